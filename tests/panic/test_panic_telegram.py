"""Telegram /close: the real PTB application against the Bot API stand-in, the real simulator behind."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from core.models import TradingState
from telegram_bridge.services import CLOSE_STARTED_TEXT
from tests.support.sim import open_orders_on_exchange
from tests.support.telegram import DESK, OUTSIDER, OWNER
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_close_panics_through_the_panic_service_and_replies(running_bot, bot_api, sim, open_book):
    bot_api.message_from(OWNER, "/close")
    bot_api.wait_sent(4, timeout_s=20)  # the acknowledgement, the alert to both chats, the answer

    owner = bot_api.sent_to(OWNER)
    assert owner[0] == CLOSE_STARTED_TEXT
    assert owner[-1].startswith(f"PANIC by telegram:{OWNER}: account FLAT, verified on the exchange.")
    assert "Closed: BTCUSDT, ETHUSDT; cancelled orders: 5." in owner[-1]
    assert bot_api.sent_to(DESK)[0].startswith(f"PANIC by telegram:{OWNER}: account FLAT")  # the alert
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    state = TradingState.load()
    assert state.panic_locked and state.panic_reason == "/close"
    assert Decision.objects.get(action="panic").details["by"] == f"telegram:{OWNER}"


def test_close_falls_back_to_direct_closes_when_the_panic_service_fails(running_bot, bot_api, sim, open_book):
    # Break the panic service for real: its first step, writing the lock, is refused by the database.
    with connection.cursor() as cursor:
        for event in ("INSERT", "UPDATE"):
            cursor.execute(
                f"CREATE TRIGGER panic_store_broken_{event.lower()} BEFORE {event} ON trading_tradingstate "
                "BEGIN SELECT RAISE(ABORT, 'panic store broken'); END"
            )
    try:
        bot_api.message_from(OWNER, "/close")
        [_, reply] = bot_api.wait_sent(2, timeout_s=20)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER panic_store_broken_insert")
            cursor.execute("DROP TRIGGER panic_store_broken_update")

    assert reply.chat_id == OWNER
    assert reply.text.startswith(
        "The panic service FAILED (IntegrityError); closed positions directly instead"
    )
    assert "send /kill" in reply.text and "Account FLAT, verified on the exchange." in reply.text
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    closes = [o for o in sim.state()["orders"] if o["reduceOnly"] and o["orderType"] == "Market"]
    assert len(closes) == 2 and all(o["orderLinkId"].startswith("manual-close-") for o in closes)
    assert Decision.objects.get(action="flatten").strategy == "manual"
    assert not TradingState.objects.filter(panic_locked=True).exists()


def test_close_is_in_help_and_in_the_command_menu(running_bot, bot_api):
    bot_api.message_from(OWNER, "/help")
    [reply] = bot_api.wait_sent(1)
    assert "/close - panic:" in reply.text
    assert "close" in [c["command"] for c in bot_api.commands]


def test_close_from_a_chat_outside_the_allowlist_does_nothing(running_bot, bot_api, sim, open_book):
    bot_api.message_from(OUTSIDER, "/close")
    bot_api.message_from(OWNER, "/help")  # updates run in order: once this is answered, /close was handled
    bot_api.wait_sent(1)
    time.sleep(0.2)
    assert [s.chat_id for s in bot_api.sent] == [OWNER]
    assert len(sim.state()["positions"]) == 2
    assert not TradingState.objects.filter(panic_locked=True).exists()


def test_a_close_sent_while_the_bridge_was_offline_is_not_run(running_bot, bot_api, sim, open_book):
    bot_api.message_from(OWNER, "/close", sent_at=time.time() - 600)
    [reply] = bot_api.wait_sent(1)
    assert reply.text.startswith("Ignored /close: it was sent 10 min ago")
    assert len(sim.state()["positions"]) == 2
