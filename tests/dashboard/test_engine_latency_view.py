"""The dashboard's latency parts: each decision row's figures, the engine's p50/p99 of the last
hour, and figures of another run shown as not current."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from controlpanel.dashboard import dashboard_initial, latency_text
from core import keys
from trading.models import Decision

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
STATS = {
    "ready": True,
    "coins": 2,
    "entries_sent": 3,
    "orders_in_flight": 0,
    "skips": {"stale_event": 4},
    "latency": {
        "event_age_ms": {"count": 3, "p50": 41, "p99": 260},
        "decide_us": {"count": 3, "p50": 38.5, "p99": 120.25},
        "ack_ms": {"count": 3, "p50": 12.345, "p99": 1480.0},
    },
    "run_id": "a1b2c3d4e5f6",
    "mode": "sim",
    "liquidation_feed": "sim",
    "started_ms": NOW_MS - 3_600_000,
    "phase": "running",
    "at_ms": NOW_MS - 400,
}


@pytest.mark.parametrize(
    ("figures", "text"),
    [
        (
            {"event_age_ms": 41, "decide_us": 38.5, "ack_ms": 12.345},
            "event age 41 ms · decision 38.5 µs · ack 12.345 ms",
        ),
        ({"event_age_ms": 2450, "decide_us": None, "ack_ms": None}, "event age 2,450 ms"),  # a stale skip
        ({"event_age_ms": -12}, "event age -12 ms"),  # the venue's clock ahead of ours
        ({}, ""),
    ],
)
def test_latency_text(figures, text):
    assert latency_text(figures) == text


def test_decision_rows_carry_their_latency_and_the_engine_its_percentiles(redis_db, settings):
    settings.EXCHANGE_MODE = "sim"
    redis_db.set(keys.ENGINE_STATS, json.dumps(STATS))
    Decision.objects.create(strategy="risk", action="set_tpsl", outcome="taken")
    Decision.objects.create(
        strategy="wl",
        symbol="BTCUSDT",
        action="open_long",
        outcome="taken",
        reason_code="entered",
        details={"event_age_ms": 41, "decide_us": 38.5, "ack_ms": 12.345},
    )

    data = dashboard_initial(now=NOW)

    entry, risk = data["decisions"]
    assert (entry["event_age_ms"], entry["decide_us"], entry["ack_ms"]) == (41, 38.5, 12.345)
    assert entry["latency_text"] == "event age 41 ms · decision 38.5 µs · ack 12.345 ms"
    assert risk["latency_text"] == "" and risk["ack_ms"] is None
    engine = data["engine"]
    assert (engine["current"], engine["problem"], engine["mode"], engine["phase"]) == (
        True,
        "",
        "sim",
        "running",
    )
    assert engine["started_text"] == "2026-12-04 11:00:00"
    assert engine["latency"] == [
        {"figure": "event age", "count": 3, "p50_text": "41 ms", "p99_text": "260 ms"},
        {"figure": "decision", "count": 3, "p50_text": "38.5 µs", "p99_text": "120 µs"},
        {"figure": "ack", "count": 3, "p50_text": "12.345 ms", "p99_text": "1,480 ms"},
    ]


def test_figures_of_another_run_are_shown_as_not_current(redis_db, settings):
    settings.EXCHANGE_MODE = "demo"  # the engine's figures are still the last sim run's
    redis_db.set(keys.ENGINE_STATS, json.dumps(STATS))
    engine = dashboard_initial(now=NOW)["engine"]
    assert engine["ready"] is True and engine["entries_sent"] == 3  # still shown ...
    assert engine["current"] is False  # ... but not as current
    assert engine["problem"] == "figures of a sim run; this system runs in demo mode"

    settings.EXCHANGE_MODE = "sim"
    redis_db.set(keys.ENGINE_STATS, json.dumps({**STATS, "phase": "stopped"}))
    assert dashboard_initial(now=NOW)["engine"]["problem"] == "the engine stopped"
