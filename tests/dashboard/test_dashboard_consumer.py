"""The dashboard's websocket through the real ASGI stack (controlpanel.asgi), a real Redis
channel layer and a real database: who gets in, and what it pushes."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.sessions.models import Session

from controlpanel.config import client_networks
from core import keys
from tests.support.dashboard import communicator, receive_type, session_cookie
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def refused(ws) -> bool:
    connected, _ = await ws.connect()
    await ws.disconnect(timeout=0.1)  # a refused consumer has nothing to clean up
    return not connected


async def test_an_anonymous_visitor_is_refused(redis_db):
    assert await refused(communicator())


async def test_a_logged_in_user_who_is_not_staff_is_refused(redis_db, client, django_user_model):
    viewer = await database_sync_to_async(django_user_model.objects.create_user)(
        "viewer", password="pw-viewer-1"
    )
    cookie = await database_sync_to_async(session_cookie)(client, viewer)
    assert await refused(communicator(cookie=cookie))


@pytest.mark.parametrize(
    "address", [("192.168.1.20", 40000), ("10.0.0.5", 40000), ("2001:db8::1", 40000), None]
)
async def test_staff_from_outside_the_client_networks_is_refused(redis_db, staff_cookie, address):
    from core.models import AccessRefusal

    assert await refused(communicator(cookie=staff_cookie, client=address))
    journaled = await database_sync_to_async(
        lambda: list(AccessRefusal.objects.values_list("channel", "reason", "source"))
    )()
    assert journaled == [("websocket", "client_network", address[0] if address else "unknown")]


async def test_a_configured_network_gets_in_and_another_origin_does_not(redis_db, staff_cookie, settings):
    settings.ALLOWED_CLIENT_NETWORKS = client_networks("127.0.0.1/32,192.168.1.0/24")
    ws = communicator(cookie=staff_cookie, client=("192.168.1.20", 40000))
    assert (await ws.connect())[0]
    await ws.disconnect()
    assert await refused(communicator(cookie=staff_cookie, origin="http://evil.example"))


async def test_staff_gets_the_whole_state_then_the_engines_decisions_as_they_are_pushed(
    redis_db, staff_cookie
):
    await database_sync_to_async(Decision.objects.create)(
        strategy="risk", symbol="BTCUSDT", action="set_tpsl", outcome="taken", reason_code="tpsl_missing"
    )
    ws = communicator(cookie=staff_cookie)
    assert (await ws.connect())[0]
    state = await receive_type(ws, "state")
    assert [d["reason_code"] for d in state["decisions"]] == ["tpsl_missing"]
    assert state["lock"]["may_trade"] is True and state["account"]["available"] is False

    pushed = {
        "at_ms": 1_767_225_600_123,
        "strategy": "wl",
        "symbol": "SOLUSDT",
        "action": "open_long",
        "outcome": "skipped",
        "reason_code": "offset_not_met",
        "order_link_id": "",
    }
    await get_channel_layer().group_send(
        keys.DASHBOARD_GROUP, {"type": "journal.decisions", "decisions": [pushed]}
    )
    message = await receive_type(ws, "decisions")
    assert message["decisions"] == [pushed]

    liquidation = {"at_ms": 1, "symbol": "SOLUSDT", "side": "long", "result": "offset_not_met"}
    await get_channel_layer().group_send(
        keys.DASHBOARD_GROUP, {"type": "liquidations", "liquidations": [liquidation]}
    )
    assert (await receive_type(ws, "liquidations"))["liquidations"] == [liquidation]
    await ws.disconnect()


async def test_it_pushes_the_account_snapshot_and_new_journal_rows_every_interval(
    redis_db, staff_cookie, fast_push
):
    ws = communicator(cookie=staff_cookie)
    assert (await ws.connect())[0]
    await receive_type(ws, "state")

    redis_db.set(
        keys.ACCOUNT_SNAPSHOT,
        json.dumps(
            {
                "at_ms": 1_767_225_600_000,
                "equity": "10234.5678",
                "im_pct": "85.5",
                "positions": [],
                "open_orders": [],
            }
        ),
    )
    await database_sync_to_async(Decision.objects.create)(
        strategy="panic", action="panic", outcome="taken", reason_code="flat"
    )
    snapshot = await receive_type(ws, "snapshot", timeout_s=3)
    assert snapshot["account"]["equity_text"] == "10,234.57"
    assert snapshot["im"]["level"] == "warn"  # 85.5 % against the default 80 / 100
    assert [p["name"] for p in snapshot["health"]["processes"]][:6] == [
        "web",
        "engine",
        "riskwatch",
        "worker",
        "risk_worker",
        "beat",
    ]
    assert [d["reason_code"] for d in snapshot["decisions"]] == ["flat"]
    # Each journal row is sent once: the next push carries only what is newer.
    assert (await receive_type(ws, "snapshot", timeout_s=3))["decisions"] == []
    await ws.disconnect()


async def test_a_logout_ends_the_feed(redis_db, staff_cookie, fast_push):
    ws = communicator(cookie=staff_cookie)
    assert (await ws.connect())[0]
    await receive_type(ws, "state")
    await database_sync_to_async(Session.objects.filter(session_key=staff_cookie).delete)()
    while True:
        output = await ws.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            break
    assert output["code"] == 4403
