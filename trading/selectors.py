"""Read-side queries the engine and pages use. Plain data out, no model instances kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from core import keys
from core.models import TradingState
from core.panic_lock import fallback_lock_read, switches_merge
from core.redis_client import redis_client
from trading.models import Coin, Decision
from trading.rules.decision import CoinRule


@dataclass(frozen=True)
class TradingFlags:
    panic_locked: bool
    halted: bool
    disabled_until_ms: int | None

    @classmethod
    def from_payload(cls, payload: dict) -> TradingFlags:
        """From `trading.services.trading_state_payload` (the Redis message)."""
        return cls(
            panic_locked=bool(payload.get("panic_locked")),
            halted=bool(payload.get("halted")),
            disabled_until_ms=payload.get("disabled_until_ms"),
        )


@dataclass(frozen=True)
class RiskLevels:
    equity_usdt: Decimal
    im_warn_pct: Decimal
    im_block_pct: Decimal
    max_open_positions: int


@dataclass(frozen=True)
class EngineConfig:
    coins: dict[str, CoinRule]
    risk: RiskLevels
    flags: TradingFlags
    pm_symbols: frozenset[str]


def trading_flags() -> TradingFlags:
    # With the panic lock the database could not take yet (core.panic_lock) merged in.
    state = switches_merge(TradingState.load(), fallback_lock_read())
    until = state.disabled_until
    return TradingFlags(
        panic_locked=state.panic_locked,
        halted=state.halted,
        disabled_until_ms=None if until is None else int(until.timestamp() * 1000),
    )


def pm_symbols() -> frozenset[str]:
    return frozenset(redis_client().smembers(keys.PM_SYMBOLS))


# The risk app hands its levels over in its AppConfig.ready() (trading never imports the
# apps above it). Without a reader the engine cannot know its guard, so it does not start.
_risk_levels_reader: Callable[[], RiskLevels] | None = None


def risk_levels_reader_set(reader: Callable[[], RiskLevels]) -> None:
    global _risk_levels_reader
    _risk_levels_reader = reader


def risk_levels() -> RiskLevels:
    if _risk_levels_reader is None:
        raise ImproperlyConfigured("No risk levels for the engine: the `risk` app is not installed.")
    return _risk_levels_reader()


def engine_config() -> EngineConfig:
    """Everything the liquidation engine's decisions read from the database and Redis."""
    return EngineConfig(
        coins={coin.symbol: CoinRule.from_model(coin) for coin in Coin.objects.all()},
        risk=risk_levels(),
        flags=trading_flags(),
        pm_symbols=pm_symbols(),
    )


def recent_entry_times_ms(*, within: timedelta) -> dict[str, int]:
    """When the engine last entered each symbol, from the journal: cooldowns survive a restart."""
    since = timezone.now() - within
    latest: dict[str, int] = {}
    rows = Decision.objects.filter(
        strategy=Decision.Strategy.LIQUIDATION, outcome=Decision.Outcome.TAKEN, created_at__gte=since
    ).values_list("symbol", "created_at")
    for symbol, created_at in rows:
        at_ms = int(created_at.timestamp() * 1000)
        if at_ms > latest.get(symbol, 0):
            latest[symbol] = at_ms
    return latest


def trading_state_from_redis(raw: str | None) -> TradingFlags | None:
    if not raw:
        return None
    try:
        return TradingFlags.from_payload(json.loads(raw))
    except (TypeError, ValueError):
        return None


def liquidations_recent(*, symbol: str = "") -> list[dict]:
    """The engine's recent liquidations on configured coins (as it published them to Redis),
    newest first, with what it made of each. Redis down raises: the API says 503."""
    raw = redis_client().lrange(keys.ENGINE_LIQUIDATIONS, 0, -1)
    rows = []
    for item in reversed(raw):
        try:
            row = json.loads(item)
        except (TypeError, ValueError):
            continue  # a corrupt row reads as missing
        if isinstance(row, dict) and (not symbol or row.get("symbol") == symbol):
            rows.append(row)
    return rows
