"""Panic fixtures: settings that point the services at the running simulator, alerts and the
bot on the Bot API stand-in. The account with something to close is the shared `open_book`."""

from __future__ import annotations

import pytest

from tests.support.telegram import TOKEN, BotThread


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
def alerts_on(telegram_settings, panic_settings):
    """Alerts go to the Bot API stand-in (both allowlisted chats)."""
    panic_settings.TELEGRAM_BOT_TOKEN = TOKEN
    return panic_settings


@pytest.fixture
def running_bot(telegram_settings, bot_api, panic_settings):
    panic_settings.TELEGRAM_BOT_TOKEN = TOKEN
    bot = BotThread(bot_api).start()
    yield bot
    bot.stop()
    assert bot.error is None, repr(bot.error)
