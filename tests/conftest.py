"""Shared fixtures, found by every test folder. Each returns something real: a running simulator,
a prepared gateway on it, an open book, a Bot API stand-in, a flushed Redis, saved rows.
Plain helpers and constants are in tests/support/."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.redis_client import redis_client
from tests.support import book
from tests.support.sim import START_PRICES, make_sim_gateway
from tests.support.telegram import DESK, OWNER, TOKEN, BotApiStandIn

# -- the simulator and a gateway on it ----------------------------------------------------


@pytest.fixture(scope="session")
def sim_server():
    """One simulator for the session (it starts in well under a second; reset per test)."""
    from simulator.testing import running_simulator

    with running_simulator(equity="10000") as handle:
        yield handle


@pytest.fixture
def sim(sim_server):
    """The simulator, reset: 10 000 USDT, no orders or positions, no faults, fresh rate-limit windows,
    and known prices."""
    sim_server.reset(equity="10000")
    for symbol, price in START_PRICES.items():
        sim_server.set_price(symbol, price)
    return sim_server


@pytest.fixture
def gateway_options() -> dict:
    """What a folder's `gateway` differs in (timeout, attempts...); override it in that folder's conftest."""
    return {}


@pytest.fixture
def gateway(sim, gateway_options):
    """A prepared gateway (clock synced, instruments loaded, position mode known) on the reset simulator."""
    return make_sim_gateway(sim, **gateway_options)


@pytest.fixture
def open_book(gateway):
    """A long (BTC) and a short (ETH), each with TP and SL, and a resting limit buy (SOL)."""
    return book.open_book(gateway)


@pytest.fixture
def three_owner_book(gateway):
    """Positions and orders of the three owners (WL, PM, manual): see `book.three_owner_book`."""
    return book.three_owner_book(gateway)


# -- Telegram -----------------------------------------------------------------------------


@pytest.fixture
def bot_api():
    """The local Bot API stand-in, answering for `TOKEN`."""
    standin = BotApiStandIn(TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture
def telegram_settings(settings, bot_api):
    """The bridge talks to the stand-in; OWNER and DESK are allowlisted."""
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_ALLOWED_CHAT_IDS = frozenset({OWNER, DESK})
    settings.TELEGRAM_API_BASE_URL = bot_api.base_url
    return settings


# -- browser, Redis, rows -----------------------------------------------------------------


@pytest.fixture
def chromium():
    """Debian's headless Chromium under Playwright (a test tool's own browser download fails here)."""
    from tests.support.browser import CHROMIUM_FLAGS, chromium_path

    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def access_journal_fresh():
    """`core.access` folds repeated refusals per process; each test journals its first one."""
    from core.access import access_journal_reset

    access_journal_reset()


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


def pytest_sessionfinish(session, exitstatus):
    """pytest-django deletes the SQLite test database file; its WAL side files stay behind."""
    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)
