"""What a backtest trades with: coins and risk levels from files or from the database.

Files are read by the real import (``config_import``), inside a transaction that is
rolled back: a backtest validates coins.json and settings.json exactly as
``import_config`` would, and never changes the database.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from django.db import transaction

from controlpanel.backtest.records import RiskConfig
from controlpanel.config_files import COIN_FIELDS, config_import
from risk.models import RiskSettings
from trading.models import Coin
from trading.rules.decision import CoinRule

# Coin fields a sweep may vary: the model's name, or the old coins.json name (COIN_FIELDS).
INTEGER_FIELDS = ("leverage", "vwap_window_minutes", "entry_cooldown_seconds", "max_event_age_ms")
SWEEPABLE = (
    "long_offset_pct",
    "short_offset_pct",
    "min_liquidation_usdt",
    "order_size_usdt",
    "order_size_pct_equity",
    "take_profit_pct",
    "stop_loss_pct",
    *INTEGER_FIELDS,
)


def backtest_config(
    *, coins_path: Path | None = None, settings_path: Path | None = None
) -> tuple[dict[str, CoinRule], RiskConfig]:
    """The coins (by symbol) and risk levels: the database's, overlaid by the files given."""
    coins_doc = json.loads(Path(coins_path).read_text()) if coins_path else None
    settings_doc = json.loads(Path(settings_path).read_text()) if settings_path else None
    with transaction.atomic():
        if coins_doc is not None or settings_doc is not None:
            # --coins replaces the database's coins, as `import_config --replace` would.
            config_import(coins=coins_doc, settings=settings_doc, replace=coins_doc is not None)
        coins = {coin.symbol: CoinRule.from_model(coin) for coin in Coin.objects.order_by("symbol")}
        risk = RiskConfig.from_model(RiskSettings.load())
        transaction.set_rollback(True)
    return coins, risk


def field_name(name: str) -> str:
    """A sweep key as the Coin field it sets: ``lick_value`` -> ``min_liquidation_usdt``."""
    field = COIN_FIELDS.get(name, name)
    if field not in SWEEPABLE:
        known = sorted(set(SWEEPABLE) | {k for k, v in COIN_FIELDS.items() if v in SWEEPABLE})
        raise ValueError(f"cannot sweep {name!r}; one of: {', '.join(known)}")
    return field


def with_values(coins: dict[str, CoinRule], values: dict[str, Decimal]) -> dict[str, CoinRule]:
    """Every coin with these field values (model field names)."""
    typed = {name: int(value) if name in INTEGER_FIELDS else Decimal(value) for name, value in values.items()}
    return {symbol: replace(rule, **typed) for symbol, rule in coins.items()}


def coins_document(coins: dict[str, CoinRule]) -> list[dict]:
    """A coins.json (the old key names) that ``import_config --coins`` takes."""
    rows = []
    for symbol in sorted(coins):
        rule = coins[symbol]
        row = {}
        for key, name in COIN_FIELDS.items():
            value = getattr(rule, name)
            if value is None:
                continue
            if isinstance(value, Decimal):
                normal = value.normalize()
                value = int(normal) if normal == normal.to_integral_value() else float(str(normal))
            row[key] = value
        rows.append(row)
    return rows
