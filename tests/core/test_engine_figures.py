"""The engine's figures in the status read: whose run they are, and whether they are current.

The engine publishes them with its run id, mode, phase and time (trading.engine_runner);
every reader (REST /api/state, the dashboard) shows another run's figures as not current."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core import keys
from core.status import engine_stats_problem, status_snapshot

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
RUN = {"ready": True, "run_id": "a1b2c3", "mode": "sim", "phase": "running", "at_ms": NOW_MS - 500}


@pytest.mark.parametrize(
    ("stats", "problem"),
    [
        (RUN, ""),
        ({**RUN, "at_ms": NOW_MS - 30_000}, ""),  # at the limit
        (None, "no figures from the engine yet"),
        ({"ready": True, "entries_sent": 3}, "figures of an earlier engine version (no run id)"),
        ({**RUN, "mode": "demo"}, "figures of a demo run; this system runs in sim mode"),
        ({**RUN, "phase": "stopped"}, "the engine stopped"),
        ({**RUN, "at_ms": NOW_MS - 30_001}, "no update for 30 s (is the engine running?)"),
        ({**RUN, "at_ms": NOW_MS - 600_000}, "no update for 600 s (is the engine running?)"),
    ],
)
def test_why_the_figures_are_not_current(stats, problem):
    assert engine_stats_problem(stats, exchange_mode="sim", now=NOW) == problem


def test_the_status_read_says_whether_the_engine_figures_are_current(redis_db, settings):
    settings.EXCHANGE_MODE = "sim"
    redis_db.set(keys.ENGINE_STATS, json.dumps(RUN))
    status = status_snapshot(now=NOW)
    assert (status.engine_current, status.engine_problem) == (True, "")

    settings.EXCHANGE_MODE = "live"  # the system was switched; the figures are the sim run's
    status = status_snapshot(now=NOW)
    assert status.engine == RUN
    assert status.engine_current is False
    assert status.engine_problem == "figures of a sim run; this system runs in live mode"
