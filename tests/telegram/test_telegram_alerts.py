"""alert_send(): one message to every allowlisted chat, over the real PTB Bot and the stand-in."""

from __future__ import annotations

import pytest

from telegram_bridge.alerts import alert_send, alert_send_async
from tests.support.telegram import DESK, OUTSIDER, OWNER


def test_an_alert_reaches_every_allowlisted_chat(telegram_settings, bot_api):
    delivered = alert_send("Daily stop hit: -5.02 %. Flattened, trading off until 00:00 UTC.")

    assert sorted(delivered) == sorted([OWNER, DESK])
    assert sorted(s.chat_id for s in bot_api.sent) == sorted([OWNER, DESK])
    assert {s.text for s in bot_api.sent} == {
        "Daily stop hit: -5.02 %. Flattened, trading off until 00:00 UTC."
    }
    assert OUTSIDER not in {s.chat_id for s in bot_api.sent}


def test_a_chat_that_blocked_the_bot_does_not_stop_the_others(telegram_settings, bot_api):
    bot_api.blocked_chats.add(OWNER)
    assert alert_send("IM 104 %: reducing exposure by 20 %") == [DESK]
    assert [s.chat_id for s in bot_api.sent] == [DESK]


def test_an_overlong_alert_is_clipped_to_telegrams_limit(telegram_settings, bot_api):
    alert_send("x" * 5000)
    assert {len(s.text) for s in bot_api.sent} == {4096}


def test_without_a_token_or_chats_nothing_is_sent(telegram_settings, bot_api):
    telegram_settings.TELEGRAM_BOT_TOKEN = ""
    assert alert_send("panic") == []
    telegram_settings.TELEGRAM_BOT_TOKEN = "7000000001:whatever"
    telegram_settings.TELEGRAM_ALLOWED_CHAT_IDS = frozenset()
    assert alert_send("panic") == []
    assert bot_api.calls == []


def test_an_unreachable_bot_api_is_reported_not_raised(telegram_settings, bot_api):
    bot_api.stop()
    assert alert_send("worker down: engine") == []


def test_a_rejected_token_is_reported_not_raised(telegram_settings, bot_api):
    bot_api.revoked = True
    assert alert_send("panic") == []
    assert bot_api.sent == []


@pytest.mark.asyncio
async def test_async_callers_use_the_async_variant(telegram_settings, bot_api):
    with pytest.raises(RuntimeError, match="alert_send_async"):
        alert_send("from inside a loop")
    assert sorted(await alert_send_async("from the engine")) == sorted([OWNER, DESK])


@pytest.mark.django_db(transaction=True)
def test_with_the_worker_down_the_bridge_itself_says_a_process_is_missing(
    telegram_settings, bot_api, redis_db
):
    """The beat's checks run in the Telegram process too: a dead worker cannot report itself."""
    import time

    from core import keys
    from core.heartbeat import heartbeat_write
    from tests.support.telegram import DESK, OWNER, BotThread

    redis_db.set(keys.ALERTS_CHECKS_SINCE, repr(time.time() - 100))  # past the start-up grace
    for process in ("web", "engine", "riskwatch", "risk_worker", "beat", "sim", "telegram"):
        heartbeat_write(process=process)
    heartbeat_write(process="worker", now=time.time() - 120)  # no Celery worker runs in this test

    bot = BotThread(bot_api, alert_watch_s=0.2).start()
    try:
        sent = bot_api.wait_sent(2)
    finally:
        bot.stop()
    assert {s.chat_id for s in sent} == {OWNER, DESK}
    assert all(s.text.startswith("worker is missing its heartbeat: last seen 12") for s in sent)
    time.sleep(0.5)
    assert len(bot_api.sent) == 2  # once per outage, not every pass
