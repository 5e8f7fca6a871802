"""Fixtures for gateway tests: a real simulator and a real gateway (real pybit) pointed at it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support import START_PRICES
from trading.bybit import BybitGateway


def make_gateway(sim, **options) -> BybitGateway:
    settings = {
        "mode": "sim",
        "api_key": sim.api_key,
        "api_secret": sim.api_secret,
        "base_url": sim.base_url,
        "timeout": 2.0,
    }
    settings.update(options)
    return BybitGateway(**settings)


@pytest.fixture
def new_gateway(sim):
    """Build another gateway on the same simulator, with options (timeout, keys...) overridden."""
    return lambda **options: make_gateway(sim, **options)


@pytest.fixture
def gateway(sim) -> BybitGateway:
    """A prepared gateway (clock synced, instruments loaded, position mode known) on the reset simulator."""
    gateway = make_gateway(sim)
    gateway.prepare()
    return gateway


@pytest.fixture
def btc_price() -> Decimal:
    return Decimal(START_PRICES["BTCUSDT"])
