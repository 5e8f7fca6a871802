"""The real PTB application against the Bot API stand-in: who is answered, and what the commands do."""

from __future__ import annotations

import json
import logging
import time

import pytest

from core import keys
from core.heartbeat import heartbeat_write
from core.models import AccessRefusal, TradingState
from tests.support.telegram import DESK, OUTSIDER, OWNER
from trading.models import Decision
from trading.services import trading_halt

pytestmark = pytest.mark.django_db(transaction=True)


def test_help_lists_the_working_commands_and_nothing_else(running_bot, bot_api):
    bot_api.message_from(OWNER, "/help")
    [reply] = bot_api.wait_sent(1)
    assert reply.chat_id == OWNER
    for command in ("/status", "/positions", "/pnl", "/kill", "/resume", "/close", "/help"):
        assert command in reply.text
    # The menu Telegram shows holds the same commands.
    assert sorted(c["command"] for c in bot_api.commands) == [
        "close",
        "help",
        "kill",
        "pnl",
        "positions",
        "resume",
        "status",
    ]
    assert bot_api.unknown_calls == []


def test_status_answers_an_allowlisted_group(running_bot, bot_api, redis_db):
    heartbeat_write(process="telegram")
    redis_db.set(
        keys.ENGINE_STATS,
        json.dumps(
            {
                "ready": True,
                "coins": 3,
                "entries_sent": 7,
                "skips": {"cooldown": 2},
                "positions": 2,
                "im_pct": "12.3456",
            }
        ),
    )
    Decision.objects.create(
        strategy="wl", symbol="BTCUSDT", action="open_long", outcome="taken", reason_code="entry"
    )

    bot_api.message_from(DESK, "/status@controlpanel_test_bot")
    [reply] = bot_api.wait_sent(1)

    assert reply.chat_id == DESK
    lines = reply.text.splitlines()
    assert lines[0] == "Mode: sim"
    assert "Trading: allowed" in lines
    assert "  telegram: up" in lines and "  engine: DOWN (never started)" in lines
    assert "Engine: ready, 3 coins, 7 entries sent, 2 skips, 2 positions, IM 12.35%" in lines
    assert any("wl BTCUSDT open_long taken entry" in line for line in lines)


def test_a_chat_outside_the_allowlist_gets_no_answer_and_changes_nothing(running_bot, bot_api, caplog):
    caplog.set_level(logging.INFO, logger="telegram_bridge")
    for text in ("/kill", "/status", "/help", "please halt everything"):
        bot_api.message_from(OUTSIDER, text)
    bot_api.message_from(
        OWNER, "/help"
    )  # updates run in order: once this is answered, the others were handled

    bot_api.wait_sent(1)
    time.sleep(0.2)
    assert [s.chat_id for s in bot_api.sent] == [OWNER]
    state = TradingState.objects.filter(pk=1).first()
    assert state is None or not state.halted
    assert not Decision.objects.exists()
    assert running_bot.ignored_chats() == {OUTSIDER: 4}
    ignored = [r.getMessage() for r in caplog.records if "telegram_chat_ignored" in r.getMessage()]
    assert len(ignored) == 1 and f"chat_id={OUTSIDER}" in ignored[0]
    assert "please halt" not in caplog.text and "/kill" not in ignored[0]
    # Journaled once, with ids and the command word only; the three after it fold into its count.
    [refusal] = AccessRefusal.objects.all()
    assert (refusal.channel, refusal.reason, refusal.source, refusal.target) == (
        "telegram",
        "telegram_chat",
        f"{OUTSIDER}:{OUTSIDER}",
        "/kill",
    )
    assert "please halt" not in str(list(AccessRefusal.objects.values()))


def test_a_stranger_sending_close_kill_and_status_changes_nothing_and_is_journaled(
    running_bot, bot_api, monkeypatch
):
    monkeypatch.setattr("core.access.WRITE_EVERY_S", 0.0)  # write each refusal, none folded
    for text in ("/close", "/close confirm", "/kill", "/kill confirm", "/status"):
        bot_api.message_from(OUTSIDER, text)
    bot_api.message_from(OWNER, "/help")
    bot_api.wait_sent(1)
    wait_for = time.monotonic() + 5
    while (
        AccessRefusal.objects.count() == 0 or sum(AccessRefusal.objects.values_list("count", flat=True)) < 5
    ):
        assert time.monotonic() < wait_for, list(AccessRefusal.objects.values())
        time.sleep(0.05)
    assert [s.chat_id for s in bot_api.sent] == [OWNER]
    state = TradingState.objects.filter(pk=1).first()
    assert state is None or not (state.halted or state.panic_locked)
    assert not Decision.objects.exists()
    assert set(AccessRefusal.objects.values_list("reason", "source")) == {
        ("telegram_chat", f"{OUTSIDER}:{OUTSIDER}")
    }


def test_kill_halts_and_journals_and_resume_lifts_the_halt(running_bot, bot_api, redis_db):
    bot_api.message_from(OWNER, "/kill")
    bot_api.message_from(OWNER, "/kill confirm")  # asks first: tests/panic/test_panic_telegram_confirm.py
    [_, reply] = bot_api.wait_sent(2)

    assert reply.text.startswith(f"Trading halted by telegram:{OWNER}.")
    state = TradingState.load()
    assert state.halted and state.halted_by == f"telegram:{OWNER}"
    halt = Decision.objects.get(action="halt")
    assert halt.strategy == "manual" and halt.details == {"by": f"telegram:{OWNER}", "reason": "/kill"}

    bot_api.message_from(OWNER, "/status")
    status = bot_api.wait_sent(3)[2].text
    assert "Trading: NOT allowed" in status and f"  - halted by telegram:{OWNER} since " in status
    assert f"manual - halt taken halted by telegram:{OWNER}" in status

    # /resume needs no confirmation.
    bot_api.message_from(OWNER, "/resume")
    resumed = bot_api.wait_sent(4)[3].text
    assert resumed == f"Halt lifted by telegram:{OWNER}. Trading is allowed."
    state.refresh_from_db()
    assert not state.halted and state.halted_by == ""
    assert Decision.objects.get(action="resume").details == {"by": f"telegram:{OWNER}"}


def test_resume_says_when_another_switch_still_stops_trading(running_bot, bot_api):
    TradingState.objects.update_or_create(
        pk=1, defaults={"panic_locked": True, "panic_reason": "POST /panic"}
    )
    trading_halt(by="api", reason="test")

    bot_api.message_from(OWNER, "/resume")
    [reply] = bot_api.wait_sent(1)

    assert reply.text.startswith(f"Halt lifted by telegram:{OWNER}, but trading is still NOT allowed:")
    assert "panic lock since" in reply.text and "(POST /panic)" in reply.text


def test_a_switch_command_sent_while_the_bridge_was_offline_is_not_run(running_bot, bot_api):
    trading_halt(by="dashboard", reason="maintenance")
    bot_api.message_from(OWNER, "/resume", sent_at=time.time() - 600)
    [reply] = bot_api.wait_sent(1)

    assert reply.text.startswith("Ignored /resume: it was sent 10 min ago")
    state = TradingState.load()
    assert state.halted and state.halted_by == "dashboard"
    assert not Decision.objects.filter(action="resume").exists()


def test_an_unknown_command_in_a_private_chat_points_to_help(running_bot, bot_api):
    bot_api.message_from(OWNER, "/frobnicate")
    [reply] = bot_api.wait_sent(1)
    assert reply.text == "Unknown command. /help lists the commands."


def test_positions_show_the_exchange_book_with_tp_sl_and_liquidation_price(running_bot, bot_api, open_book):
    """The simulator's positions, read by the worker's snapshot step, as /positions shows them."""
    from django.utils import timezone

    from risk.snapshot import account_snapshot_publish_step

    assert account_snapshot_publish_step(gateway=open_book, now=timezone.now()).published
    btc = next(p for p in open_book.positions() if p.symbol == "BTCUSDT")

    bot_api.message_from(OWNER, "/positions")
    [reply] = bot_api.wait_sent(1)

    lines = reply.text.splitlines()
    assert lines[0].startswith("Positions (2), read ")
    assert "BTCUSDT long 0.010 @ " in reply.text and "ETHUSDT short 0.50 @ " in reply.text
    btc_detail = lines[lines.index(next(line for line in lines if line.startswith("BTCUSDT"))) + 1]
    assert "TP 100000, SL 95000, liq " in btc_detail and f"liq {btc.liq_price.normalize():f}" in btc_detail
    assert "TP 3100, SL 3400" in reply.text
