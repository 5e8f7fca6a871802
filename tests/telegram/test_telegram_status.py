"""status_text(): what /status says, from real rows and a real Redis."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from core import keys
from core.heartbeat import heartbeat_write
from core.models import TradingState
from telegram_bridge.services import status_text
from trading.models import Decision

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 1, 27, 12, 0, tzinfo=UTC)


def test_it_names_every_switch_that_stops_trading(redis_db):
    TradingState.objects.create(
        pk=1,
        panic_locked=True,
        panic_since=NOW - timedelta(minutes=5),
        panic_reason="POST /panic",
        halted=True,
        halted_since=NOW - timedelta(minutes=1),
        halted_by="telegram:42",
        disabled_until=NOW + timedelta(hours=12),
        disabled_reason="daily stop -5%",
    )
    lines = status_text(now=NOW).splitlines()
    assert lines[0] == "Mode: sim"
    assert lines[2:6] == [
        "Trading: NOT allowed",
        "  - panic lock since 2025-01-27 11:55:00 UTC (POST /panic)",
        "  - halted by telegram:42 since 2025-01-27 11:59:00 UTC",
        "  - disabled until 2025-01-28 00:00:00 UTC (daily stop -5%)",
    ]


def test_a_past_disable_does_not_count_and_reading_creates_no_row(redis_db):
    assert "Trading: allowed" in status_text(now=NOW).splitlines()
    assert not TradingState.objects.exists()
    TradingState.objects.create(
        pk=1, disabled_until=NOW - timedelta(seconds=1), disabled_reason="daily target"
    )
    assert "Trading: allowed" in status_text(now=NOW).splitlines()


def test_it_lists_each_required_process_up_or_down(redis_db, settings):
    settings.TELEGRAM_BOT_TOKEN = ""  # then telegram is not a required process
    heartbeat_write(process="web")
    heartbeat_write(process="engine", now=time.time() - 300)
    heartbeat_write(process="portfolio-extra")  # not required: not listed
    text = status_text()
    assert (
        "Processes:\n  web: up\n  engine: DOWN (last beat 5m ago)\n"
        "  riskwatch: DOWN (never started)\n  worker: DOWN (never started)\n"
        "  risk_worker: DOWN (never started)\n" in text
    )
    assert "  beat: DOWN (never started)\n  sim: DOWN (never started)\n" in text
    assert "telegram" not in text and "portfolio-extra" not in text


def test_engine_stats_say_when_there_are_none_or_not_ready(redis_db):
    assert "Engine: no stats yet (not started?)" in status_text()
    redis_db.set(
        keys.ENGINE_STATS,
        json.dumps(
            {"ready": False, "coins": 0, "entries_sent": 0, "skips": {}, "positions": 0, "im_pct": None}
        ),
    )
    assert "Engine: NOT ready, 0 coins, 0 entries sent, 0 skips, 0 positions, IM n/a" in status_text()


def test_it_shows_the_latest_five_decisions_newest_first(redis_db):
    for minute in range(7):
        Decision.objects.create(
            created_at=NOW + timedelta(minutes=minute),
            strategy="wl",
            symbol="ETHUSDT",
            action="open_short",
            outcome="skipped",
            reason_code=f"reason_{minute}",
        )
    lines = status_text().splitlines()
    start = lines.index("Last 5 decisions (UTC):")
    assert lines[start + 1 :] == [
        f"  01-27 12:0{m}:00 wl ETHUSDT open_short skipped reason_{m}" for m in (6, 5, 4, 3, 2)
    ]


def test_an_empty_journal_says_so(redis_db):
    assert status_text().splitlines()[-1] == "Last decisions: none yet"


def _account(at: datetime, **fields) -> str:
    snapshot = {
        "at_ms": int(at.timestamp() * 1000),
        "equity": "10245.5",
        "im_pct": "12.345",
        "positions": [
            {"symbol": "BTCUSDT", "side": "long", "size": "0.010", "unrealised_pnl": "12.3", "owner": "WL"},
            {"symbol": "ETHUSDT", "side": "short", "size": "0.50", "unrealised_pnl": "-4.1", "owner": "PM"},
        ],
    }
    return json.dumps({**snapshot, **fields})


def test_it_shows_the_money_today_and_each_position_with_its_owner(redis_db):
    from decimal import Decimal as D

    from risk.models import DailyPnL

    now = datetime.now(tz=UTC)
    redis_db.set(keys.ACCOUNT_SNAPSHOT, _account(now - timedelta(seconds=2)))
    DailyPnL.objects.create(
        date=now.date(),
        baseline_equity=D("10000"),
        last_equity=D("10245.5"),
        pnl_usdt=D("245.5"),
        pnl_pct=D("2.455"),
        high_equity=D("10300"),
        low_equity=D("9990"),
    )
    lines = status_text(now=now).splitlines()
    start = lines.index("Trading: allowed") + 1
    at = (now - timedelta(seconds=2)).strftime("%H:%M:%S")
    assert lines[start : start + 5] == [
        f"Equity: 10,245.50 USDT, IM 12.34 % (warn 80, reduce 100), at {at} UTC",  # half-even
        "Today: +245.50 USDT (+2.46 %), target +10 %, stop -5 %, open",
        "Positions (2):",
        "  BTCUSDT long 0.010, uPnL +12.30 (WL)",
        "  ETHUSDT short 0.50, uPnL -4.10 (PM)",
    ]


def test_a_stale_or_missing_account_says_so(redis_db):
    now = datetime.now(tz=UTC)
    assert "Account: unknown: no snapshot yet (is the worker running?)" in status_text(now=now)
    redis_db.set(keys.ACCOUNT_SNAPSHOT, _account(now - timedelta(seconds=45), positions=[]))
    text = status_text(now=now)
    assert ", STALE (45 s old)" in text
    assert "Positions: none" in text and "Today: no record yet (target +10 %, stop -5 %)" in text


def test_it_says_whether_the_exchange_answers(redis_db):
    from core.exchange_status import UNREACHABLE, exchange_failure_record, exchange_ok_record

    assert status_text().splitlines()[1] == (
        "Exchange status unknown: no recent exchange call (is the worker running?)"
    )
    exchange_ok_record()
    assert status_text().splitlines()[1] == "Exchange: answers"
    exchange_failure_record(kind=UNREACHABLE, error="ExchangeUnreachable: no answer: ConnectionError")
    line = status_text().splitlines()[1]
    assert line.startswith("⚠️ Exchange unreachable since ") and line.endswith("no answer: ConnectionError")


def test_positions_show_tp_sl_and_liquidation_price_or_say_why_not(redis_db):
    from telegram_bridge.services import positions_text

    now = datetime.now(tz=UTC)
    assert positions_text(now=now) == "Positions: unknown: no snapshot yet (is the worker running?)"
    btc = {
        "symbol": "BTCUSDT",
        "side": "long",
        "size": "0.010",
        "owner": "WL",
        "entry_price": "60000.00",
        "mark_price": "60123.40",
        "unrealised_pnl": "1.234",
        "take_profit": "61200.00",
        "stop_loss": "59400.00",
        "liq_price": "54321.50",
    }
    doge = {
        "symbol": "DOGEUSDT",
        "side": "short",
        "size": "100",
        "owner": "manual",
        "entry_price": "0.12345",
        "mark_price": "0.12300",
        "unrealised_pnl": "0.045",
        "take_profit": None,
        "stop_loss": None,
        "liq_price": "",
    }
    redis_db.set(keys.ACCOUNT_SNAPSHOT, _account(now - timedelta(seconds=3), positions=[btc, doge]))
    assert positions_text(now=now).splitlines() == [
        "Positions (2), read 3 s ago:",
        "BTCUSDT long 0.010 @ 60000 (WL)",
        "  mark 60123.4, uPnL +1.23 USDT, TP 61200, SL 59400, liq 54321.5",
        "DOGEUSDT short 100 @ 0.12345 (manual)",
        "  mark 0.123, uPnL +0.04 USDT, TP none, SL none, liq none",
    ]
    redis_db.set(keys.ACCOUNT_SNAPSHOT, _account(now - timedelta(seconds=40), positions=[]))
    assert positions_text(now=now) == "No positions (read 40 s ago, STALE)."


def test_engine_figures_of_another_run_are_marked_not_current(redis_db, settings):
    import time

    settings.EXCHANGE_MODE = "demo"
    stats = {"ready": True, "coins": 2, "entries_sent": 5, "skips": {}, "positions": 1, "im_pct": "3"}
    stats |= {"run_id": "a1b2", "mode": "sim", "phase": "running", "at_ms": time.time_ns() // 1_000_000}
    redis_db.set(keys.ENGINE_STATS, json.dumps(stats))
    lines = status_text().splitlines()
    engine = lines.index("Engine: ready, 2 coins, 5 entries sent, 0 skips, 1 positions, IM 3.00%")
    assert lines[engine + 1] == "  NOT CURRENT: figures of a sim run; this system runs in demo mode"

    settings.EXCHANGE_MODE = "sim"
    assert "NOT CURRENT" not in status_text()
