"""Fixtures for gateway tests: the shared gateway (real pybit) on the simulator, with a shorter
timeout, and more gateways on demand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.sim import START_PRICES, make_sim_gateway


@pytest.fixture
def gateway_options() -> dict:
    return {"timeout": 2.0}


@pytest.fixture
def new_gateway(sim, gateway_options):
    """Build another gateway (not prepared) on the same simulator, with options (timeout, keys...)
    overridden."""
    return lambda **options: make_sim_gateway(sim, prepare=False, **{**gateway_options, **options})


@pytest.fixture
def btc_price() -> Decimal:
    return Decimal(START_PRICES["BTCUSDT"])
