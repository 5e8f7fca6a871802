# TradingState moved to `core` (state only; the table trading_tradingstate stays).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("trading", "0001_initial"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="TradingState")],
            database_operations=[],
        ),
    ]
