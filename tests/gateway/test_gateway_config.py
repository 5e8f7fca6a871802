"""Building a gateway: modes, settings, and what it refuses to be built with."""

from decimal import Decimal

import pytest

from trading.bybit import BybitGateway, ExchangeMode
from trading.errors import AuthError

KEYS = {"api_key": "key-for-a-test", "api_secret": "secret-for-a-test"}


@pytest.mark.parametrize(
    ("mode", "endpoint"),
    [
        ("live", "https://api.bybit.com"),
        ("testnet", "https://api-testnet.bybit.com"),
        ("demo", "https://api-demo.bybit.com"),
        ("sim", "http://127.0.0.1:8601"),
    ],
)
def test_each_mode_points_at_its_venue(mode, endpoint):
    gateway = BybitGateway(mode=mode, base_url="http://127.0.0.1:8601/", **KEYS)
    assert gateway.mode is ExchangeMode(mode)
    assert gateway.endpoint == endpoint


def test_the_repr_never_shows_keys():
    text = repr(BybitGateway(mode="live", **KEYS))
    assert "secret-for-a-test" not in text and "key-for-a-test" not in text


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "sim"},  # no base_url
        {"mode": "paper", "base_url": "http://x"},
        {"mode": "live", "dcp_window_s": 2},
        {"mode": "live", "max_attempts": 0},
    ],
)
def test_it_refuses_bad_configuration(options):
    with pytest.raises(ValueError):
        BybitGateway(**{**KEYS, **options})


@pytest.mark.integration
def test_from_settings_builds_a_sim_gateway(settings, sim):
    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY = sim.api_key
    settings.SIM_API_SECRET = sim.api_secret
    settings.BYBIT_DCP_WINDOW_S = 0
    gateway = BybitGateway.from_settings(timeout=2.0)
    assert gateway.mode is ExchangeMode.SIM and gateway.dcp_window_s == 0
    assert gateway.wallet().total_equity == Decimal("10000")


@pytest.mark.integration
def test_from_settings_sets_the_dcp_window_at_prepare(settings, sim):
    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY = sim.api_key
    settings.SIM_API_SECRET = sim.api_secret
    settings.BYBIT_DCP_WINDOW_S = 30
    sim.configure(dcp_enabled=True)
    gateway = BybitGateway.from_settings()
    gateway.prepare()
    assert sim.state()["dcp"]["window"] == 30
    assert (gateway.dcp_active, gateway.dcp_refusal) == (True, None)


@pytest.mark.integration
def test_prepare_carries_on_when_the_account_refuses_dcp(settings, sim):
    """Bybit enables DCP only for some accounts: a refusal (here 10005, which also reads
    like a refused key) leaves the gateway prepared and usable, DCP off, the refusal kept."""
    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY = sim.api_key
    settings.SIM_API_SECRET = sim.api_secret
    settings.BYBIT_DCP_WINDOW_S = 30
    gateway = BybitGateway.from_settings()
    gateway.prepare()
    assert gateway.dcp_active is False
    assert gateway.dcp_refusal is not None and gateway.dcp_refusal.code == 10005
    assert sim.state()["dcp"]["window"] == 10  # untouched
    assert gateway.wallet().total_equity == Decimal("10000")  # and it trades on


@pytest.mark.integration
def test_a_worker_gateway_never_asks_for_dcp(settings, sim, monkeypatch):
    """Risk, panic and TP/SL upkeep share the worker's gateway: DCP is the engine's alone."""
    from trading import worker_gateway as module

    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY = sim.api_key
    settings.SIM_API_SECRET = sim.api_secret
    settings.BYBIT_DCP_WINDOW_S = 30
    monkeypatch.setattr(module, "_gateway", None)  # built from these settings
    gateway = module.worker_gateway()
    assert gateway.dcp_window_s == 0 and gateway.dcp_refusal is None


def test_from_settings_refuses_a_real_venue_without_keys(settings):
    settings.EXCHANGE_MODE = "live"
    settings.BYBIT_API_KEY = ""
    settings.BYBIT_API_SECRET = ""
    with pytest.raises(AuthError):
        BybitGateway.from_settings()


def test_from_settings_defaults_dcp_on_in_live_only(settings):
    settings.EXCHANGE_MODE = "live"
    settings.BYBIT_API_KEY, settings.BYBIT_API_SECRET = KEYS["api_key"], KEYS["api_secret"]
    del settings.BYBIT_DCP_WINDOW_S
    assert BybitGateway.from_settings().dcp_window_s == 10
    settings.EXCHANGE_MODE = "testnet"
    assert BybitGateway.from_settings().dcp_window_s == 0
