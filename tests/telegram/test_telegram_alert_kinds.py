"""Every alert kind through the policy (core.alerts) and the real PTB client to the Bot API
stand-in, most of them raised where they happen: the account snapshot refused by the
simulator (wrong keys), an order the simulator refuses, the engine's journal rows, the
beat's heartbeat and feed checks. Storms fold into one digest."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.utils import timezone

from core import keys
from core.alert_checks import alert_checks_step
from core.alerts import KIND_GROUPS, alert_digests_flush, alert_send, recent_alerts
from core.heartbeat import heartbeat_write
from core.models import AlertSettings
from portfolio.common import ORDER_JOURNAL
from risk.snapshot import account_snapshot_publish_step
from tests.support.sim import make_sim_gateway
from tests.support.telegram import DESK, OWNER
from trading.alerting import engine_journal_alerts
from trading.engine import PendingJournal
from trading.order_flow import OrderStatus, order_send
from trading.rules import Side

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def telegram(telegram_settings, bot_api, redis_db):
    """Alerts on to both allowlisted chats of the stand-in; an empty Redis (no windows open)."""
    return bot_api


def texts_to(bot_api, chat_id) -> list[str]:
    return bot_api.sent_to(chat_id)


@pytest.mark.parametrize("kind", sorted(KIND_GROUPS))
def test_every_kind_reaches_every_allowlisted_chat(telegram, kind):
    text = f"{kind}: something happened"
    assert alert_send(text, kind=kind) == "delivered"
    assert texts_to(telegram, OWNER) == [text] and texts_to(telegram, DESK) == [text]


def test_a_switched_off_kind_sends_nothing_but_is_listed(telegram):
    settings = AlertSettings.load()
    settings.panic = False
    settings.save()

    assert alert_send("PANIC: flat, locked.", kind="panic") == "muted"
    assert alert_send("Panic lock reset.", kind="panic_reset") == "muted"
    assert alert_send("IM 85 %", kind="im_warn") == "delivered"  # another group still goes out
    assert texts_to(telegram, OWNER) == ["IM 85 %"]
    assert [(row["kind"], row["status"]) for row in recent_alerts()] == [
        ("im_warn", "delivered"),
        ("panic_reset", "muted"),
        ("panic", "muted"),
    ]


@pytest.mark.integration
def test_refused_keys_every_2_s_are_one_message_and_no_digest(telegram, sim, settings):
    """The account snapshot task would hit 10003 every 2 s: 50 passes, one message per chat, in
    plain words, and no digest of repeats (the status says it goes on: dashboard, /status)."""
    settings.EXCHANGE_MODE = "sim"
    wrong_keys = make_sim_gateway(sim, prepare=False, api_key="not-a-key", max_attempts=1)
    for _ in range(50):
        result = account_snapshot_publish_step(gateway=wrong_keys, now=timezone.now())
        assert not result.published and "AuthError (code 10003)" in result.error

    [message] = texts_to(telegram, OWNER)
    assert (
        message.startswith("⚠️ API key refused by the simulator (retCode 10003") and "SIM_API_KEY" in message
    )
    assert len(telegram.sent) == 2  # one per chat

    window_s = AlertSettings.load().rate_limit_window_s
    assert alert_digests_flush(now=timezone.now().timestamp() + window_s + 1) == 0
    assert len(telegram.sent) == 2


@pytest.mark.integration
def test_an_order_the_exchange_refuses_is_alerted_with_its_ret_code(telegram, sim, gateway):
    def place():  # 20 BTC at 97,000 on 10,000 USDT: the venue says 110007
        return gateway.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=Decimal("20"),
            order_link_id="pm-entry-BTC-test",
            reference_price=Decimal("97000"),
        )

    outcome = order_send(
        journal=ORDER_JOURNAL,
        action="enter",
        symbol="BTCUSDT",
        order_link_id="pm-entry-BTC-test",
        place=place,
        details={},
        now=timezone.now(),
    )

    assert outcome.status is OrderStatus.REFUSED
    [message] = texts_to(telegram, OWNER)
    assert message.startswith("Order refused by Bybit: enter BTCUSDT: ") and message.endswith(
        "(retCode 110007)."
    )


def engine_row(outcome: str, reason: str, **details) -> PendingJournal:
    base = {
        "qty": "0.010",
        "price": "96500.0",
        "vwap": "97000.0",
        "take_profit": "97465.0",
        "stop_loss": "95535.0",
    }
    return PendingJournal(1, "BTCUSDT", "open_long", outcome, reason, "wl-entry-BTC-x", {**base, **details})


def test_the_engines_entries_and_refusals_are_alerted_from_its_journal_rows(telegram):
    engine_journal_alerts(
        [
            engine_row("skipped", "offset_not_met"),  # not an alert
            engine_row("taken", "entered", order_id="1"),
            engine_row("failed", "insufficient_balance", error_code=110007, error="Insufficient balance"),
            engine_row(
                "failed", "outcome_unknown", error_code=None, error="no answer"
            ),  # may be on the venue
            engine_row("failed", "exchange_error_10003", error_code=10003, error="API key is invalid."),
        ]
    )

    assert texts_to(telegram, OWNER) == [
        "WL entry BTCUSDT long: 0.010 @ 96500.0 (VWAP 97000.0, TP 97465.0, SL 95535.0).",
        "Order refused by Bybit: WL entry long BTCUSDT: Insufficient balance (retCode 110007).",
        "API key refused by the simulator (retCode 10003: API key is invalid): "
        "fix SIM_API_KEY / SIM_API_SECRET in .env for sim mode, then restart.",
    ]


def beat_everyone(now: float, *, but: str = "", last_seen: float = 0.0) -> None:
    for process in ("web", "engine", "riskwatch", "worker", "risk_worker", "beat", "telegram", "sim"):
        heartbeat_write(process=process, now=last_seen if process == but else now)


def test_a_missing_heartbeat_is_alerted_once_and_its_return_once(telegram, redis_db):
    start = 1_800_000_000.0
    beat_everyone(start, but="engine", last_seen=start - 60)
    assert alert_checks_step(now=start).missing == []  # the checks just started: everyone gets a grace
    assert telegram.sent == []

    beat_everyone(start + 30, but="engine", last_seen=start - 60)
    assert alert_checks_step(now=start + 30).missing == ["engine"]
    assert alert_checks_step(now=start + 40).missing == []  # once per outage
    beat_everyone(start + 50)
    assert alert_checks_step(now=start + 51).recovered == ["engine"]
    assert alert_checks_step(now=start + 60).recovered == []

    assert texts_to(telegram, OWNER) == [
        "engine is missing its heartbeat: last seen 90 s ago, at 07:59:00 UTC.",
        "engine is back: heartbeat 1 s ago.",
    ]


def feed_clocks(redis_db, *, at: float, last_frame: float, connected: bool = True) -> None:
    record = {
        "at_ms": int(at * 1000),
        "feeds": {"liquidation": {"last_frame_ms": int(last_frame * 1000), "connected": connected}},
    }
    redis_db.set(keys.ENGINE_FEEDS, json.dumps(record))


def test_a_silent_liquidation_feed_is_alerted_once_and_its_return_once(telegram, redis_db):
    start = 1_800_000_000.0
    beat_everyone(start)
    feed_clocks(redis_db, at=start, last_frame=start - 59)
    assert alert_checks_step(now=start).feed_silent is False  # 59 s: not yet
    feed_clocks(redis_db, at=start + 5, last_frame=start - 59, connected=False)
    assert alert_checks_step(now=start + 5).feed_silent is True
    feed_clocks(redis_db, at=start + 10, last_frame=start - 59)
    assert alert_checks_step(now=start + 10).feed_silent is False  # once per silence
    feed_clocks(redis_db, at=start + 15, last_frame=start + 14)
    assert alert_checks_step(now=start + 15).feed_recovered is True

    assert texts_to(telegram, OWNER) == [
        "The liquidation feed has been silent for 64 s (last message at 07:59:01 UTC; "
        "not connected, reconnecting).",
        "The liquidation feed is back: last message at 08:00:14 UTC.",
    ]


def test_a_stale_feed_record_means_the_engine_is_down_not_the_feed(telegram, redis_db):
    start = 1_800_000_000.0
    beat_everyone(start)
    feed_clocks(redis_db, at=start - 60, last_frame=start - 600)
    assert alert_checks_step(now=start).feed_silent is False
    assert telegram.sent == []


@pytest.mark.integration
def test_a_close_refused_during_a_flatten_is_alerted_after_the_flatten(telegram, sim, open_book):
    from trading.flatten import positions_flatten

    sim.fault("*", mode="error", retCode=10001, count=1, symbol="BTCUSDT")  # the first close only
    report = positions_flatten(gateway=open_book, strategy="panic", run_key="panic-test", pause_s=0.01)

    assert report.flat and report.rounds == 2
    [message] = texts_to(telegram, OWNER)
    assert message.startswith("Order refused by Bybit: panic flatten close ") and message.endswith(
        "(retCode 10001)."
    )


@pytest.mark.integration
def test_a_wl_position_closed_on_the_exchange_is_alerted_as_an_exit(telegram, sim, three_owner_book):
    gateway = three_owner_book  # BTC long 0.010 with TP 99 000 (WL), ETH short, SOL long (manual)
    assert account_snapshot_publish_step(gateway=gateway, now=timezone.now()).published
    assert telegram.sent == []

    sim.set_price("BTCUSDT", "99500.00")  # the exchange's take-profit closes the WL long
    sim.set_price("SOLUSDT", "181.000")
    assert account_snapshot_publish_step(gateway=gateway, now=timezone.now()).positions == 2

    [message] = texts_to(telegram, OWNER)
    assert message.startswith("WL exit BTCUSDT long 0.010: the position is closed (entry 97")
    assert account_snapshot_publish_step(gateway=gateway, now=timezone.now()).published
    assert len(texts_to(telegram, OWNER)) == 1  # seen once
