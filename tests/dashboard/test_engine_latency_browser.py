"""The dashboard in headless Chromium: each decision row's latency (first paint and pushed),
the engine's latency p50/p99, and another run's figures marked as not current."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from core import keys
from tests.support.browser import dashboard_page, running_web

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SEED = """
from django.contrib.auth.models import User
from trading.models import Decision
User.objects.create_superuser('owner', '', 'pw-owner-1')
Decision.objects.create(strategy='wl', symbol='BTCUSDT', action='open_long', outcome='taken',
    reason_code='entered', details={'event_age_ms': 41, 'decide_us': 38.5, 'ack_ms': 12.345})
"""


def stats(mode: str) -> str:
    return json.dumps(
        {
            "ready": True,
            "coins": 1,
            "entries_sent": 1,
            "orders_in_flight": 0,
            "skips": {},
            "latency": {
                "event_age_ms": {"count": 1, "p50": 41, "p99": 41},
                "decide_us": {"count": 1, "p50": 38.5, "p99": 38.5},
                "ack_ms": {"count": 1, "p50": 12.345, "p99": 12.345},
            },
            "run_id": "a1b2c3d4e5f6",
            "mode": mode,
            "phase": "running",
            "started_ms": time.time_ns() // 1_000_000 - 60_000,
            "at_ms": time.time_ns() // 1_000_000,
        }
    )


def group_send(message: dict) -> None:
    """From another thread: Playwright's sync API owns this thread's event loop."""
    from channels.layers import get_channel_layer

    thread = threading.Thread(
        target=lambda: asyncio.run(get_channel_layer().group_send(keys.DASHBOARD_GROUP, message))
    )
    thread.start()
    thread.join(timeout=10)


def test_latency_and_another_runs_figures_on_the_page(tmp_path, settings, redis_db, chromium):
    redis_db.set(keys.ENGINE_STATS, stats("demo"))  # the web process runs in sim mode
    with running_web(tmp_path, settings.REDIS_URL, setup=(SEED,), DASHBOARD_PUSH_INTERVAL_S="0.5") as (
        base_url,
        _env,
    ):
        page, script_errors = dashboard_page(chromium, base_url)

        # First paint: the row's figures, the p50/p99 table, and the figures marked not current.
        row = page.locator("#decisions-body tr").first.inner_text()
        assert row.endswith("event age 41 ms · decision 38.5 µs · ack 12.345 ms")
        assert page.is_visible("#engine-not-current")
        assert page.inner_text("#engine-not-current") == (
            "Not current: figures of a demo run; this system runs in sim mode"
        )
        assert page.inner_text("#engine-run").startswith("demo run a1b2c3d4e5f6 since ")
        # innerText has the cells' tabs only once the table is laid out (hidden, it is the bare text).
        page.wait_for_selector("#engine-latency-body tr >> nth=2", state="visible")
        latency = page.locator("#engine-latency-body tr").all_inner_texts()
        assert latency[2].split("\t") == ["ack", "12.345 ms", "12.345 ms", "1"]

        # The engine's pushes carry raw figures: the page writes them the same way.
        page.wait_for_function("document.getElementById('live-status').textContent === 'live'")
        group_send(
            {
                "type": "journal.decisions",
                "decisions": [
                    {
                        "at_ms": time.time_ns() // 1_000_000,
                        "strategy": "wl",
                        "symbol": "SOLUSDT",
                        "action": "open_short",
                        "outcome": "skipped",
                        "reason_code": "stale_event",
                        "order_link_id": "",
                        "event_age_ms": 2450,
                    }
                ],
            }
        )
        page.wait_for_selector("#decisions-body tr.fresh >> text=event age 2,450 ms", timeout=5000)

        # This run's own figures arrive with the next push: current again.
        redis_db.set(keys.ENGINE_STATS, stats("sim"))
        page.wait_for_selector("#engine-not-current", state="hidden", timeout=5000)
        assert page.inner_text("#engine-run").startswith("sim run ")
        assert script_errors == []
