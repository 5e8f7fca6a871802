"""Fixtures for the Telegram bridge: a local Bot API stand-in and the real PTB application against it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.telegram.bot_api_standin import BotApiStandIn

# Shaped like a real token ("<bot id>:<secret>"), so a leak would look like one.
TOKEN = "7000000001:AAF-test-token-never-logged_x9Yz"
OWNER = 4242  # a private chat on the allowlist
DESK = -1001234567  # a supergroup on the allowlist
OUTSIDER = 999  # a private chat that is not


@pytest.fixture
def bot_api():
    standin = BotApiStandIn(TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture
def telegram_settings(settings, bot_api):
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_ALLOWED_CHAT_IDS = frozenset({OWNER, DESK})
    settings.TELEGRAM_API_BASE_URL = bot_api.base_url
    return settings


class BotThread:
    """`bot_main` on its own event loop in a background thread, as `run_telegram` runs it."""

    def __init__(self, bot_api: BotApiStandIn, **options):
        self.bot_api = bot_api
        self.options = {"poll_timeout_s": 1.0, "retry_s": 0.2, **options}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.application = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="telegram-bot", daemon=True)

    def _main(self) -> None:
        from telegram_bridge.bot import application_build, bot_main

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.application = application_build()
            await bot_main(self.stop_event, application=self.application, **self.options)

        try:
            asyncio.run(main())
        except BaseException as error:
            self.error = error

    def start(self, timeout_s: float = 10.0) -> BotThread:
        self.thread.start()
        return self.wait_running(timeout_s)

    def wait_running(self, timeout_s: float = 10.0) -> BotThread:
        deadline = time.monotonic() + timeout_s
        while not (self.application is not None and self.application.running):
            assert self.error is None, repr(self.error)
            assert time.monotonic() < deadline, f"bot not polling; calls: {self.bot_api.calls}"
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.thread.is_alive() and self.loop is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=timeout_s)
        assert not self.thread.is_alive(), "bot did not stop"

    def ignored_chats(self):
        from telegram_bridge.handlers import IGNORED_CHATS_KEY

        return dict(self.application.bot_data.get(IGNORED_CHATS_KEY, {}))


@pytest.fixture
def running_bot(telegram_settings, bot_api, redis_db):
    bot = BotThread(bot_api).start()
    yield bot
    bot.stop()
    assert bot.error is None, repr(bot.error)
