"""Fixtures for the portfolio strategy: the shared gateway trying reads once, PM settings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio.models import PortfolioSettings
from tests.support.portfolio import START


@pytest.fixture
def gateway_options() -> dict:
    """Reads try once so fault tests stay fast."""
    return {"max_attempts": 1}


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
