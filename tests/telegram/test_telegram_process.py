"""run_telegram: refusals, the process (heartbeat, clean stop), start-up against a bad or absent
Bot API, and the token staying out of the logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.core.management import CommandError, call_command

from core import keys
from telegram_bridge.alerts import alert_send
from telegram_bridge.bot import BotTokenRejected
from tests.support import REPO
from tests.support.telegram import OWNER, TOKEN, BotApiStandIn, BotThread


@pytest.mark.parametrize(
    ("token", "chat_ids", "message"),
    [
        ("", frozenset({OWNER}), "TELEGRAM_BOT_TOKEN is not set"),
        (TOKEN, frozenset(), "TELEGRAM_ALLOWED_CHAT_IDS is empty"),
    ],
)
def test_run_telegram_refuses_to_start_half_configured(settings, bot_api, token, chat_ids, message):
    settings.TELEGRAM_BOT_TOKEN = token
    settings.TELEGRAM_ALLOWED_CHAT_IDS = chat_ids
    settings.TELEGRAM_API_BASE_URL = bot_api.base_url
    with pytest.raises(CommandError, match=message):
        call_command("run_telegram")
    assert bot_api.calls == []


def test_a_rejected_token_stops_the_bridge_with_a_clear_error(telegram_settings, bot_api):
    bot_api.revoked = True
    bot = BotThread(bot_api)
    bot.thread.start()
    bot.thread.join(timeout=10)
    assert isinstance(bot.error, BotTokenRejected)
    assert "401 Unauthorized" in str(bot.error) and TOKEN.split(":", 1)[1] not in str(bot.error)
    assert bot_api.calls == []  # the stand-in refuses before recording: getMe was the only request


def test_a_token_revoked_while_running_stops_the_bridge(running_bot, bot_api):
    bot_api.revoked = True
    running_bot.thread.join(timeout=10)
    assert isinstance(running_bot.error, BotTokenRejected)
    running_bot.error = None  # expected here; the fixture checks for others


@pytest.mark.django_db(transaction=True)
def test_the_bridge_waits_for_the_bot_api_and_then_serves(telegram_settings, redis_db, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    telegram_settings.TELEGRAM_API_BASE_URL = f"http://127.0.0.1:{port}"
    late = BotApiStandIn(TOKEN)
    bot = BotThread(late)
    with caplog.at_level(logging.WARNING, logger="telegram_bridge"):
        bot.thread.start()
        time.sleep(0.5)  # a few refused connections
        assert bot.thread.is_alive() and bot.error is None
        late.start(port=port)
    try:
        bot.wait_running()
        late.message_from(OWNER, "/help")
        assert "/status" in late.wait_sent(1)[0].text
    finally:
        bot.stop()
        late.stop()
    assert bot.error is None
    assert "telegram_unavailable attempt=1 error=NetworkError" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_token_never_reaches_the_logs(telegram_settings, bot_api, redis_db, caplog):
    for name in (None, "telegram", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    bot = BotThread(bot_api).start()
    bot_api.message_from(OWNER, "/status")
    bot_api.message_from(OWNER, "/kill")
    bot_api.wait_sent(2)
    bot.stop()
    alert_send("alert")
    bot_api.revoked = True
    alert_send("alert with a revoked token")
    rejected = BotThread(bot_api)
    rejected.thread.start()
    rejected.thread.join(timeout=10)

    assert isinstance(rejected.error, BotTokenRejected)
    # The leaks this guards against did happen: PTB logs the API URL, httpx every request URL.
    assert "Set Bot API URL: " in caplog.text and "HTTP Request: POST" in caplog.text
    assert "<TELEGRAM_BOT_TOKEN>" in caplog.text
    secret = TOKEN.split(":", 1)[1]
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in record.getMessage() and secret not in (record.exc_text or "")


@pytest.mark.integration
def test_run_telegram_beats_answers_and_stops_cleanly_on_sigterm(bot_api, redis_db, settings, tmp_path):
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "EXCHANGE_", "TELEGRAM_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="controlpanel.settings",
        CONTROLPANEL_READ_DOTENV="0",
        SECRET_KEY="test-only",
        EXCHANGE_MODE="sim",
        REDIS_URL=settings.REDIS_URL,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        HEARTBEAT_INTERVAL_S="0.2",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_ALLOWED_CHAT_IDS=f"{OWNER}",
        TELEGRAM_API_BASE_URL=bot_api.base_url,
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_telegram"],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (redis_db.hget(keys.HEARTBEATS, "telegram") and "getUpdates" in bot_api.calls):
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "run_telegram did not start polling"
            time.sleep(0.05)
        assert json.loads(redis_db.hget(keys.HEARTBEATS, "telegram"))["pid"] == process.pid
        help_update = bot_api.message_from(OWNER, "/help")
        assert "/status" in bot_api.wait_sent(1)[0].text

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "process_stopped name=telegram" in output and "telegram_stopped" in output
    assert TOKEN.split(":", 1)[1] not in output
    # Stopping confirmed the fetched updates, so a restart does not replay /help.
    assert bot_api.calls[-1] == "getUpdates" and bot_api.confirmed(help_update)
