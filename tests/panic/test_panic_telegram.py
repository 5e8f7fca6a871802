"""Telegram /close: the real PTB application against the Bot API stand-in, the real simulator behind.

/close asks first; the confirmation mechanics for both /close and /kill (strangers, expiry,
a second confirmation) are in tests/panic/test_panic_telegram_confirm.py."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from core import keys
from core.models import TradingState
from core.panic_lock import trading_switches
from core.redis_client import events_channel
from core.status import status_snapshot
from core.text import money_text
from panic.services import panic_reset
from panic.tasks import lock_reconcile
from telegram_bridge.services import CLOSE_STARTED_TEXT
from tests.support.database import database_down
from tests.support.sim import open_orders_on_exchange
from tests.support.telegram import DESK, OUTSIDER, OWNER, buttons
from trading.models import Decision
from trading.selectors import trading_flags
from trading.services import trading_resume

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _snapshot_published(gateway) -> None:
    """The worker's account snapshot, which /close's question reads (no exchange call in the ask)."""
    from risk.snapshot import account_snapshot_publish_step

    assert account_snapshot_publish_step(gateway=gateway, now=timezone.now()).published


def test_close_asks_first_with_positions_and_notional_then_panics_on_its_button(
    running_bot, bot_api, sim, open_book
):
    _snapshot_published(open_book)
    marks = {p.symbol: p.mark_price for p in open_book.positions()}
    bot_api.message_from(OWNER, "/close")
    [ask] = bot_api.wait_sent(1)

    lines = ask.text.splitlines()
    assert lines[0].startswith("/close would lock trading, cancel every order (TP/SL too)")
    assert lines[1].startswith("Positions (2), read ")
    btc, eth = Decimal("0.010") * marks["BTCUSDT"], Decimal("0.50") * marks["ETHUSDT"]
    assert lines[2] == f"  BTCUSDT long 0.010, notional {money_text(btc)} USDT"
    assert lines[3] == f"  ETHUSDT short 0.50, notional {money_text(eth)} USDT"
    assert lines[4] == f"Total notional: {money_text(btc + eth)} USDT; open orders: 5."
    assert lines[5] == 'Confirm within 60 s: press "Close everything" or send /close confirm.'
    assert buttons(ask) == [("Close everything", buttons(ask)[0][1]), ("Cancel", buttons(ask)[1][1])]
    # Asking did nothing.
    time.sleep(0.3)
    assert len(sim.state()["positions"]) == 2
    assert not TradingState.objects.filter(panic_locked=True).exists()

    bot_api.button_press(ask, "Close everything")
    bot_api.wait_sent(5, timeout_s=20)  # the ask, the acknowledgement, the alert to both chats, the answer

    [answer] = bot_api.wait_callback_answers(1)
    assert answer["text"] == "/close confirmed."
    assert bot_api.edits[0]["text"] == f"{ask.text}\n\nConfirmed by telegram:{OWNER}."
    assert "reply_markup" not in bot_api.edits[0]  # the buttons are gone
    owner = bot_api.sent_to(OWNER)
    assert owner[1] == CLOSE_STARTED_TEXT
    assert owner[-1].startswith(f"PANIC by telegram:{OWNER}: account FLAT, verified on the exchange.")
    assert "Closed: BTCUSDT, ETHUSDT; cancelled orders: 5." in owner[-1]
    assert bot_api.sent_to(DESK)[0].startswith(f"PANIC by telegram:{OWNER}: account FLAT")  # the alert
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    state = TradingState.load()
    assert state.panic_locked and state.panic_reason == "/close"
    assert Decision.objects.get(action="panic").details["by"] == f"telegram:{OWNER}"


def test_close_confirm_typed_panics_and_a_second_confirmation_does_nothing(
    running_bot, bot_api, sim, open_book
):
    bot_api.message_from(OWNER, "/close")
    bot_api.message_from(OWNER, "/close confirm")
    bot_api.wait_sent(5, timeout_s=20)
    owner = bot_api.sent_to(OWNER)
    assert "Positions: unknown (no snapshot yet (is the worker running?))" in owner[0]
    assert bot_api.edits[0]["text"] == f"{owner[0]}\n\nConfirmed by telegram:{OWNER} (typed)."
    assert owner[-1].startswith(f"PANIC by telegram:{OWNER}: account FLAT")
    assert sim.state()["positions"] == []

    bot_api.message_from(OWNER, "/close confirm")
    [*_, again] = bot_api.wait_sent(6)
    assert again.text == "Nothing done. This /close was already confirmed or cancelled."
    assert Decision.objects.filter(action="panic").count() == 1


def _stop_the_panic_service(cursor) -> None:
    """The panic service's first step, its lock (reason "/close"), is refused by the database;
    the rest of the database works."""
    if connection.vendor == "postgresql":
        cursor.execute(
            "CREATE FUNCTION panic_lock_broken() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'panic service broken' USING ERRCODE = 'integrity_constraint_violation'; "
            "END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER panic_lock_broken BEFORE UPDATE ON trading_tradingstate FOR EACH ROW "
            "WHEN (NEW.panic_reason = '/close') EXECUTE FUNCTION panic_lock_broken()"
        )
        return
    cursor.execute(
        "CREATE TRIGGER panic_lock_broken BEFORE UPDATE ON trading_tradingstate "
        "WHEN NEW.panic_reason = '/close' BEGIN SELECT RAISE(ABORT, 'panic service broken'); END"
    )


def _restart_the_panic_service(cursor) -> None:
    if connection.vendor == "postgresql":
        cursor.execute("DROP TRIGGER panic_lock_broken ON trading_tradingstate")
        cursor.execute("DROP FUNCTION panic_lock_broken()")
        return
    cursor.execute("DROP TRIGGER panic_lock_broken")


def test_close_falls_back_to_direct_closes_when_the_panic_service_fails(running_bot, bot_api, sim, open_book):
    # The first close is refused as on an account whose position mode was switched by hand;
    # the fallback sends it again once without positionIdx.
    sim.fault("/v5/order/create", retCode=10001, retMsg="position idx not match position mode")
    with connection.cursor() as cursor:
        _stop_the_panic_service(cursor)
    try:
        bot_api.message_from(OWNER, "/close")
        bot_api.message_from(OWNER, "/close confirm")
        [*_, reply] = bot_api.wait_sent(3, timeout_s=20)
    finally:
        with connection.cursor() as cursor:
            _restart_the_panic_service(cursor)

    assert reply.chat_id == OWNER
    lines = reply.text.splitlines()
    assert lines[0] == (
        "The panic service FAILED (IntegrityError); closed positions directly instead "
        "(reduce-only, exact sizes)."
    )
    assert lines[1].startswith("Trading is LOCKED (panic lock).")
    assert lines[2] in (
        "Closes sent: BTCUSDT Sell 0.01, ETHUSDT Buy 0.5; cancelled orders: 5.",
        "Closes sent: ETHUSDT Buy 0.5, BTCUSDT Sell 0.01; cancelled orders: 5.",
    )
    assert lines[3].startswith("Sent again without positionIdx (the account's position mode did not match): ")
    assert lines[4] == "Account FLAT, verified on the exchange."
    assert len(lines) == 5  # the journal was written: nothing to say about it
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    closes = [o for o in sim.state()["orders"] if o["reduceOnly"] and o["orderType"] == "Market"]
    assert all(o["orderLinkId"].startswith("manual-close-") for o in closes)
    [refused] = [o for o in closes if o["orderStatus"] == "Rejected"]
    filled = [o for o in closes if o["orderStatus"] == "Filled"]
    assert refused["rejectCode"] == 10001 and len(filled) == 2
    # The retry (without positionIdx) is a new order under a new orderLinkId, for the same position.
    [retry] = [o for o in filled if o["symbol"] == refused["symbol"]]
    assert retry["orderLinkId"] != refused["orderLinkId"] and retry["qty"] == refused["qty"]
    assert lines[3].endswith(f": {refused['symbol']}.")
    # The lock is the fallback's own, in the database: nothing re-enters.
    state = TradingState.load()
    assert state.panic_locked and state.panic_reason == "/close (fallback)"
    flatten = Decision.objects.get(action="flatten", strategy="manual")
    assert flatten.reason_code == "fallback_flat" and flatten.details["lock"] == "database"
    assert len(flatten.details["closed_without_position_idx"]) == 1


def test_close_falls_back_with_the_database_down_and_the_lock_reaches_the_database_later(
    running_bot, bot_api, sim, open_book, redis_db
):
    events = redis_db.pubsub()
    events.subscribe(events_channel())
    bot_api.message_from(OWNER, "/close")
    [ask] = bot_api.wait_sent(1)
    with database_down():
        bot_api.button_press(ask, "Close everything")
        [*_, reply] = bot_api.wait_sent(3, timeout_s=20)

    lines = reply.text.splitlines()
    assert lines[0].startswith("The panic service FAILED (OperationalError); closed positions directly")
    assert lines[1].startswith("Trading is LOCKED, the lock held in Redis (the database was down)")
    assert (
        lines[-1]
        == "The journal could not be written (OperationalError): the closes above WENT OUT all the same."
    )
    assert "Account FLAT, verified on the exchange." in lines
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []

    # The engine was told, on the events channel, like for the normal lock.
    notices = []
    while (message := events.get_message(timeout=1.0)) is not None:
        if message["type"] == "message":
            notices.append(json.loads(message["data"]))
    assert [n["type"] for n in notices] == ["trading_state"] and notices[0]["panic_locked"] is True
    assert notices[0]["panic_reason"] == "/close (fallback)"
    events.close()

    # The database is back, the lock is still only in Redis: every reader of the switches honours it.
    assert not TradingState.objects.filter(panic_locked=True).exists()
    assert not status_snapshot().may_trade and status_snapshot().switches.panic_locked
    assert trading_flags().panic_locked
    assert not trading_switches().may_trade(timezone.now())
    # A switch change meanwhile (here a /resume) tells the engine the lock is still on.
    trading_resume(by="test")
    assert json.loads(redis_db.get(keys.TRADING_STATE))["panic_locked"] is True

    # The beat writes it into the database, with the journal entry the fallback could not write.
    assert lock_reconcile() == {"reconciled": True}
    state = TradingState.load()
    assert state.panic_locked and state.panic_reason == "/close (fallback)"
    assert redis_db.get(keys.PANIC_FALLBACK_LOCK) is None
    assert Decision.objects.get(action="lock").reason_code == "reconciled_from_redis"
    late = Decision.objects.get(action="flatten", strategy="manual")
    assert late.reason_code == "fallback_journaled_late" and late.outcome == "taken"
    assert late.details["lock"] == "redis" and len(late.details["closes_sent"]) == 2
    assert lock_reconcile() == {"reconciled": False}

    # And it is reset like any other lock.
    assert panic_reset(by="test").was_locked
    assert status_snapshot().may_trade


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
