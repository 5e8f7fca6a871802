"""Mark the coins of databases made before `Coin.demo`: a coin exactly as make run's demo
configuration loaded it is a demo coin, so it starts disabled outside sim like a new one.

The values are frozen here (controlpanel/demo/coins.json of the time): a migration must not
change with later edits of that file, and the trading app does not read the project's files.
"""

from decimal import Decimal

from django.db import migrations

# symbol -> minimum liquidation (USDT); every demo coin shares the rest of DEMO_VALUES.
DEMO_LIQUIDATION_USDT = {
    "BTCUSDT": 20000,
    "ETHUSDT": 10000,
    "SOLUSDT": 5000,
    "XRPUSDT": 3000,
    "DOGEUSDT": 3000,
    "ADAUSDT": 2000,
    "BNBUSDT": 3000,
    "LINKUSDT": 2000,
    "AVAXUSDT": 2000,
    "LTCUSDT": 2000,
}
DEMO_VALUES = {
    "long_offset_pct": Decimal("0.6"),
    "short_offset_pct": Decimal("0.6"),
    "order_size_usdt": Decimal("10"),
    "order_size_pct_equity": None,
    "leverage": 10,
    "take_profit_pct": Decimal("1"),
    "stop_loss_pct": Decimal("2"),
    "vwap_window_minutes": 60,
    "entry_cooldown_seconds": 60,
}


def mark_demo_coins(apps, schema_editor):
    Coin = apps.get_model("trading", "Coin")
    for symbol, liquidation_usdt in DEMO_LIQUIDATION_USDT.items():
        Coin.objects.filter(
            symbol=symbol, min_liquidation_usdt=Decimal(liquidation_usdt), demo=False, **DEMO_VALUES
        ).update(demo=True)


class Migration(migrations.Migration):
    dependencies = [("trading", "0004_coin_demo")]

    operations = [migrations.RunPython(mark_demo_coins, migrations.RunPython.noop)]
