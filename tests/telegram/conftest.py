"""Fixtures for the Telegram bridge: the real PTB application polling the Bot API stand-in
(`bot_api` and `telegram_settings` are shared, in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support.telegram import BotThread


@pytest.fixture
def running_bot(telegram_settings, bot_api, redis_db):
    bot = BotThread(bot_api).start()
    yield bot
    bot.stop()
    assert bot.error is None, repr(bot.error)
