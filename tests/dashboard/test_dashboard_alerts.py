"""The dashboard's "last alerts": the selector over core.alerts' Redis list, the first paint,
and the websocket's push (real Redis, real database, the real ASGI stack)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from controlpanel.dashboard import RECENT_ALERTS_SHOWN, alerts_recent_view
from core import alerts
from core.models import AlertSettings
from tests.support.dashboard import communicator, receive_type

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


@pytest.fixture
def no_senders(monkeypatch):
    monkeypatch.setattr(alerts, "_senders", {})


@pytest.mark.django_db
def test_the_last_alerts_newest_first_with_what_became_of_each(redis_db, no_senders):
    AlertSettings.objects.update_or_create(pk=1, defaults={"panic": False})
    alerts.alert_send("IM 85 % is above the warn level", kind="im_warn", now=NOW)
    alerts.alert_send("IM 85 % is above the warn level", kind="im_warn", now=NOW + 1)  # a repeat: folded
    alerts.alert_send("PANIC: flat, locked.", kind="panic", now=NOW + 2)  # switched off: muted

    assert alerts_recent_view() == [
        {
            "at_ms": 1_800_000_002_000,
            "time_text": "08:00:02",
            "kind": "panic",
            "status": "muted",
            "text": "PANIC: flat, locked.",
        },
        {
            "at_ms": 1_800_000_001_000,
            "time_text": "08:00:01",
            "kind": "im_warn",
            "status": "folded",
            "text": "IM 85 % is above the warn level",
        },
        {
            "at_ms": 1_800_000_000_000,
            "time_text": "08:00:00",
            "kind": "im_warn",
            "status": "delivered",
            "text": "IM 85 % is above the warn level",
        },
    ]


@pytest.mark.django_db
def test_the_page_shows_at_most_the_last_twenty(redis_db, no_senders):
    for i in range(RECENT_ALERTS_SHOWN + 5):
        alerts.alert_send(f"WL entry COIN{i}USDT long", kind="entry", now=NOW + i)
    rows = alerts_recent_view()
    assert len(rows) == RECENT_ALERTS_SHOWN and rows[0]["text"] == "WL entry COIN24USDT long"


@pytest.mark.django_db
def test_without_redis_the_list_is_empty_not_an_error(settings, no_senders):
    from core.redis_client import redis_client

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    redis_client.cache_clear()
    try:
        assert alerts_recent_view() == []
    finally:
        redis_client.cache_clear()


@pytest.mark.django_db
def test_the_first_paint_lists_them(admin_client, redis_db, no_senders):
    alerts.alert_send("The liquidation feed has been silent for 75 s.", kind="feed_silent", now=NOW)
    page = admin_client.get("/").content.decode()
    assert '<tbody id="alerts-body">' in page
    assert "<td>feed_silent</td>" in page and "The liquidation feed has been silent for 75 s." in page
    assert '<td class="alert-delivered">delivered</td>' in page


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_websocket_pushes_a_new_alert(redis_db, staff_cookie, fast_push, no_senders):
    ws = communicator(cookie=staff_cookie)
    assert (await ws.connect())[0]
    assert (await receive_type(ws, "state"))["alerts"] == []

    await database_sync_to_async(alerts.alert_send)(
        "engine is missing its heartbeat.", kind="heartbeat_missing"
    )
    snapshot = await receive_type(ws, "snapshot", timeout_s=3)
    assert [(a["kind"], a["status"], a["text"]) for a in snapshot["alerts"]] == [
        ("heartbeat_missing", "delivered", "engine is missing its heartbeat.")
    ]
    await ws.disconnect()
