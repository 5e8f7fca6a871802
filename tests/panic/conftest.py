"""Panic fixtures: the real gateway on the running simulator, settings that point the
services at it, and an account with something to close."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from tests.telegram.conftest import TOKEN, BotThread, bot_api, telegram_settings  # noqa: F401 (fixtures)
from trading.bybit import OrderType
from trading.rules import Side


@pytest.fixture
def panic_settings(settings, sim, redis_db):
    """`BybitGateway.from_settings()` reaches the simulator; short pauses between flatten rounds."""
    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY = sim.api_key
    settings.SIM_API_SECRET = sim.api_secret
    settings.PANIC_FLATTEN_ROUNDS = 3
    settings.PANIC_FLATTEN_PAUSE_S = 0.05
    settings.PANIC_JOIN_WAIT_S = 15.0
    settings.TELEGRAM_BOT_TOKEN = ""  # alerts off unless a test turns them on
    return settings


@pytest.fixture
def open_book(gateway):
    """A long (BTC) and a short (ETH), each with TP and SL, and a resting limit buy (SOL)."""
    gateway.place_order(
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal("0.010"),
        order_link_id="t-long",
        reference_price=Decimal("97000"),
    )
    gateway.set_trading_stop(
        symbol="BTCUSDT",
        position_side=Side.BUY,
        take_profit=Decimal("100000.0"),
        stop_loss=Decimal("95000.0"),
    )
    gateway.place_order(
        symbol="ETHUSDT",
        side=Side.SELL,
        qty=Decimal("0.50"),
        order_link_id="t-short",
        reference_price=Decimal("3300"),
    )
    gateway.set_trading_stop(
        symbol="ETHUSDT",
        position_side=Side.SELL,
        take_profit=Decimal("3100.00"),
        stop_loss=Decimal("3400.00"),
    )
    gateway.place_order(
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("1.0"),
        order_link_id="t-resting",
        order_type=OrderType.LIMIT,
        price=Decimal("150.000"),
    )
    return gateway


@pytest.fixture
def alerts_on(telegram_settings, panic_settings):  # noqa: F811
    """Alerts go to the Bot API stand-in (both allowlisted chats)."""
    panic_settings.TELEGRAM_BOT_TOKEN = TOKEN
    return panic_settings


@pytest.fixture
def running_bot(telegram_settings, bot_api, panic_settings):  # noqa: F811
    panic_settings.TELEGRAM_BOT_TOKEN = TOKEN
    bot = BotThread(bot_api).start()
    yield bot
    bot.stop()
    assert bot.error is None, repr(bot.error)


def open_orders_on_exchange(sim) -> list[dict]:
    return [o for o in sim.state()["orders"] if o["orderStatus"] in ("New", "PartiallyFilled", "Untriggered")]


def run_in_threads(count: int, target, *, stagger_s: float = 0.0) -> list:
    """Start `count` threads on `target(index)` together (thread i after i x `stagger_s`);
    return their results (or errors)."""
    from django.db import connection

    barrier = threading.Barrier(count)
    results: list = [None] * count

    def main(index: int) -> None:
        try:
            barrier.wait()
            time.sleep(index * stagger_s)
            results[index] = target(index)
        except BaseException as error:  # surfaced to the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results
