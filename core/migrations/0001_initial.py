# TradingState moved here from `trading` (its table keeps the name trading_tradingstate):
# state only, the database already has the table from trading 0001.

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("trading", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="TradingState",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("panic_locked", models.BooleanField(default=False)),
                        ("panic_since", models.DateTimeField(blank=True, null=True)),
                        ("panic_reason", models.CharField(blank=True, max_length=200)),
                        ("disabled_until", models.DateTimeField(blank=True, help_text="Trading is off until this UTC time (daily target/stop).", null=True)),
                        ("disabled_reason", models.CharField(blank=True, max_length=200)),
                        ("halted", models.BooleanField(default=False, help_text="All strategies stopped (/kill) until resumed.")),
                        ("halted_since", models.DateTimeField(blank=True, null=True)),
                        ("halted_by", models.CharField(blank=True, max_length=100)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "verbose_name": "trading state",
                        "db_table": "trading_tradingstate",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
