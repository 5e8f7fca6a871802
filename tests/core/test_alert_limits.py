"""core.alerts against the real Redis: the rate limit, repeats, digests, the trade digest,
switched-off kinds and the "last alerts" list. The sender here is a list; the same alerts
through the real PTB client are in tests/telegram/test_telegram_alert_kinds.py."""

from __future__ import annotations

import pytest

from core import alerts
from core.models import AlertSettings

NOW = 1_800_000_000.0  # unix s; every call passes its own time


@pytest.fixture
def sent(monkeypatch, db, redis_db):
    got: list[tuple[str, str]] = []
    monkeypatch.setattr(alerts, "_senders", {"list": lambda text, *, kind: got.append((kind, text))})
    return got


def storm(kind: str, texts, *, start: float = NOW) -> list[str]:
    return [alerts.alert_send(text, kind=kind, now=start + i * 0.1) for i, text in enumerate(texts)]


def test_a_storm_of_one_repeated_error_is_one_message_then_one_digest(sent):
    text = "Bybit refused the API keys (API key is invalid., retCode 10003)"
    decisions = storm("auth_error", [text] * 50)

    assert decisions.count("delivered") == 1 and decisions.count("folded") == 49
    assert sent == [("auth_error", text)]
    assert alerts.alert_digests_flush(now=NOW + 299) == 0  # the window (300 s) is still open
    assert alerts.alert_digests_flush(now=NOW + 300) == 1
    assert len(sent) == 2
    kind, digest = sent[1]
    assert kind == "auth_error"
    assert digest.startswith("auth_error: 49 more alerts folded by the rate limit.")
    assert f"49× {text}" in digest
    assert alerts.alert_digests_flush(now=NOW + 400) == 0  # sent once


def test_a_storm_of_50_different_alerts_is_three_messages_and_a_digest_of_47(sent):
    texts = [
        f"Order refused by Bybit: enter COIN{i}USDT: insufficient balance (retCode 110007)."
        for i in range(50)
    ]
    decisions = storm("order_refused", texts)

    assert decisions[:3] == ["delivered"] * 3 and set(decisions[3:]) == {"folded"}
    assert [text for _, text in sent] == texts[:3]
    alerts.alert_digests_flush(now=NOW + 300)
    assert len(sent) == 4
    digest = sent[3][1]
    assert digest.startswith("order_refused: 47 more alerts folded by the rate limit.")
    assert f"• {texts[3]}" in digest and "… and 37 more." in digest  # ten listed, the rest counted


def test_a_storm_that_goes_on_is_one_digest_per_window_never_a_flood(sent):
    text = "Bybit refused the API keys (API key is invalid., retCode 10003)"
    # Every 2 s for 20 minutes, as the account snapshot would hit it; the beat flushes every 10 s.
    for second in range(0, 1200, 2):
        alerts.alert_send(text, kind="auth_error", now=NOW + second)
        if second % 10 == 0:
            alerts.alert_digests_flush(now=NOW + second)
    alerts.alert_digests_flush(now=NOW + 1500)
    # One message, then one digest per 300 s window: 1 + 4, and together they count all 600.
    assert len(sent) == 5
    folded = sum(int(text.split(": ")[1].split(" ")[0]) for _, text in sent[1:])
    assert folded == 599


def test_the_first_alert_of_another_kind_is_never_held_back_by_a_storm(sent):
    storm("auth_error", ["keys refused"] * 50)
    assert alerts.alert_send("PANIC: flat, locked.", kind="panic", now=NOW + 6) == "delivered"
    assert sent[-1] == ("panic", "PANIC: flat, locked.")


def test_urgent_kinds_are_not_folded_as_repeats(sent):
    decisions = storm("daily_limit", ["Daily stop hit: -5.02 %."] * 3)
    assert decisions == ["delivered"] * 3
    assert storm("im_warn", ["IM 85 %"] * 3) == ["delivered", "folded", "folded"]


def test_a_switched_off_kind_sends_nothing_but_is_listed(sent):
    AlertSettings.objects.filter(pk=AlertSettings.load().pk).update(im=False)

    assert alerts.alert_send("IM 104 %: reducing exposure by 20 %", kind="im_reduce", now=NOW) == "muted"
    assert sent == []
    [row] = alerts.recent_alerts()
    assert row["kind"] == "im_reduce" and row["status"] == "muted" and row["text"].startswith("IM 104 %")
    assert alerts.alert_digests_flush(now=NOW + 3600) == 0


def test_with_a_trade_digest_entries_and_exits_wait_for_it(sent):
    settings = AlertSettings.load()
    settings.trade_digest_minutes = 15
    settings.save()

    alerts.alert_send("WL entry BTCUSDT long: 0.01 @ 97000.", kind="entry", now=NOW)
    alerts.alert_send("PM exit XRPUSDT: sold 10 @ 0.61 (trailing_stop).", kind="exit", now=NOW + 60)
    alerts.alert_send("PANIC: flat, locked.", kind="panic", now=NOW + 61)  # not a trade: at once
    assert sent == [("panic", "PANIC: flat, locked.")]
    assert alerts.alert_digests_flush(now=NOW + 899) == 0
    assert alerts.alert_digests_flush(now=NOW + 900) == 1
    kind, digest = sent[1]
    assert kind == "trades"
    assert digest.splitlines() == [
        "Trades digest: 2 alerts.",
        "• WL entry BTCUSDT long: 0.01 @ 97000.",
        "• PM exit XRPUSDT: sold 10 @ 0.61 (trailing_stop).",
    ]


def test_every_alert_is_listed_newest_first_with_what_became_of_it(sent):
    storm("order_refused", [f"refused {i}" for i in range(4)])
    alerts.alert_digests_flush(now=NOW + 300)

    rows = alerts.recent_alerts(limit=10)
    assert [(r["kind"], r["status"]) for r in rows] == [
        ("order_refused", "digest"),
        ("order_refused", "folded"),
        ("order_refused", "delivered"),
        ("order_refused", "delivered"),
        ("order_refused", "delivered"),
    ]
    assert rows[-1]["text"] == "refused 0" and rows[-1]["at"].startswith("2027-01-15T08:00:00")


def test_the_list_is_capped(sent):
    storm("entry", [f"entry {i}" for i in range(alerts.RECENT_ALERTS + 5)])
    assert len(alerts.recent_alerts(limit=1000)) == alerts.RECENT_ALERTS


def test_without_redis_an_alert_is_still_delivered(sent, settings):
    from core.redis_client import redis_client

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    redis_client.cache_clear()
    try:
        assert alerts.alert_send("PANIC: flat, locked.", kind="panic") == "delivered"
    finally:
        redis_client.cache_clear()  # the next call builds the client again, on the restored URL
    assert sent == [("panic", "PANIC: flat, locked.")]
