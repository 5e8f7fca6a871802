"""Shared fixtures. Each returns something real: a flushed Redis, saved rows."""

from __future__ import annotations

import pytest

from controlpanel.redis_client import redis_client


@pytest.fixture
def redis_db():
    """The test Redis database, empty at the start and the end of the test."""
    client = redis_client()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def api_token(settings):
    return settings.CONTROL_API_TOKEN


@pytest.fixture
def btcusdt_instrument(db):
    from decimal import Decimal

    from trading.models import Instrument

    return Instrument.objects.create(
        symbol="BTCUSDT",
        qty_step=Decimal("0.001"),
        min_order_qty=Decimal("0.001"),
        max_order_qty=Decimal("1190"),
        max_market_order_qty=Decimal("119"),
        min_notional_value=Decimal("5"),
        tick_size=Decimal("0.1"),
        max_leverage=Decimal("100"),
    )
