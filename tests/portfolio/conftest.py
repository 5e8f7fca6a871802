"""Fixtures for the portfolio strategy: a real gateway on the simulator, PM settings, an allowlist."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from portfolio.models import AllowlistEntry, PortfolioSettings
from trading.bybit import BybitGateway

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)

# The simulator's still market starts every symbol here and keeps 24 h of flat history
# at that price, so a symbol's 24 h momentum is its price now against these.
START = {
    "XRPUSDT": "2.5000",
    "DOGEUSDT": "0.33000",
    "ADAUSDT": "0.9500",
    "LINKUSDT": "20.000",
    "AVAXUSDT": "35.000",
    "LTCUSDT": "110.00",
}


@pytest.fixture
def gateway(sim) -> BybitGateway:
    """A prepared gateway on the (reset) simulator; reads try once so fault tests stay fast."""
    gateway = BybitGateway(
        mode="sim",
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.base_url,
        timeout=3.0,
        max_attempts=1,
    )
    gateway.prepare()
    return gateway


@pytest.fixture
def pm(db, redis_db, sim) -> PortfolioSettings:
    """PM on: 300 USDT over 2 positions with 2 adds each (legs of 50 USDT), 24 h lookback, 2 % minimum
    momentum, adds every 3 %, a 5 % trailing stop, a scan an hour. Every START symbol back at its
    start price (the simulator is shared by the session)."""
    for symbol, price in START.items():
        sim.set_price(symbol, price)
    settings = PortfolioSettings.load()
    settings.enabled = True
    settings.budget_usdt = Decimal("300")
    settings.max_positions = 2
    settings.pyramid_max_adds = 2
    settings.pyramid_step_pct = Decimal("3")
    settings.trailing_stop_pct = Decimal("5")
    settings.momentum_lookback_hours = 24
    settings.min_momentum_pct = Decimal("2")
    settings.scan_interval_minutes = 60
    settings.save()
    return settings


def allow(*symbols: str, enabled: bool = True) -> None:
    for symbol in symbols:
        AllowlistEntry.objects.update_or_create(symbol=symbol, defaults={"enabled": enabled})


def prices(sim, **by_symbol: str) -> None:
    """Set last prices: prices(sim, XRPUSDT="2.75")."""
    for symbol, price in by_symbol.items():
        sim.set_price(symbol, price)


def sim_positions(sim) -> dict[str, dict]:
    return {row["symbol"]: row for row in sim.state()["positions"]}


def sim_orders(sim) -> list[dict]:
    """Every order request the simulator received that it accepted."""
    return [order for order in sim.state()["orders"] if not order.get("rejectCode")]
