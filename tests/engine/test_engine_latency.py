"""The engine's clocks, end to end against the simulator: a backlog after a feed stall is
skipped as stale, an entry journals its latency, and each run's figures carry their run.

The engine runs as `run_engine` runs it (tests/support/engine.py): real gateway, real
feeds, a real database and Redis.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from core import keys
from tests.support.engine import EngineThread, entry_orders, move_price
from tests.support.waiting import wait_until
from trading.bybit import BybitGateway
from trading.engine_runner import EngineEndpoints, EngineRunner
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def published_stats(redis_db) -> dict:
    raw = redis_db.get(keys.ENGINE_STATS)
    return json.loads(raw) if raw else {}


def stall_loop(thread: EngineThread, seconds: float) -> None:
    """Block the engine's event loop for ``seconds``, as a feed stall would: frames the venue
    sends meanwhile wait in the socket and arrive together when it ends."""
    stalled = threading.Event()

    def stall():
        stalled.set()
        time.sleep(seconds)

    thread.loop.call_soon_threadsafe(stall)
    assert stalled.wait(5), "the engine's loop never ran the stall"


def test_a_backlog_after_a_feed_stall_is_skipped_as_stale_and_the_next_fresh_one_trades(sim, engine_thread):
    engine = engine_thread.engine
    move_price(sim, engine, "BTCUSDT", "95000.00")  # every liquidation below meets the offset
    stall_loop(engine_thread, 2.6)  # the coin's max_event_age_ms is the default 2 000
    for qty in ("0.5", "0.6", "0.7"):
        sim.liquidation("BTCUSDT", "SELL", "95000", qty)  # sent now, processed > 2 s later

    stale = wait_until(
        lambda: (
            (rows := list(Decision.objects.filter(reason_code="stale_event"))) and len(rows) == 3 and rows
        ),
        what="three stale_event skips",
    )
    assert all(row.outcome == "skipped" and row.symbol == "BTCUSDT" for row in stale)
    assert all(2_000 < row.details["event_age_ms"] < 10_000 for row in stale), [r.details for r in stale]
    assert entry_orders(sim) == [], "the backlog placed an order"
    assert engine.skip_counts["stale_event"] == 3

    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")  # the feed is current again
    [order] = wait_until(lambda: entry_orders(sim), what="the entry of the fresh liquidation")
    assert order["side"] == "Buy"


def test_an_entry_journals_its_event_age_decision_time_and_ack_and_the_figures_summarise_them(
    sim, engine_thread, redis_db, client, api_token
):
    engine = engine_thread.engine
    move_price(sim, engine, "BTCUSDT", "95000.00")
    sim.fault("/v5/order/create", mode="latency", latencyMs=300, count=1)  # a slow acknowledgement
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")

    entered = wait_until(lambda: Decision.objects.filter(outcome="taken").first(), what="the entry")
    details = entered.details
    assert 0 <= details["event_age_ms"] < 1_000  # injected now, on the same machine
    assert 0 < details["decide_us"] < 100_000
    assert 300 <= details["ack_ms"] < 3_000  # the venue held the answer 300 ms

    stats = wait_until(
        lambda: (s := published_stats(redis_db)) and s["latency"]["ack_ms"]["count"] == 1 and s,
        what="the figures with the entry",
    )
    for name in ("event_age_ms", "decide_us", "ack_ms"):
        assert stats["latency"][name] == {"count": 1, "p50": details[name], "p99": details[name]}
    assert (stats["mode"], stats["phase"], stats["run_id"]) == (
        "sim",
        "running",
        engine_thread.runner.run_info["run_id"],
    )

    bearer = {"HTTP_AUTHORIZATION": f"Bearer {api_token}"}
    [row] = client.get("/api/decisions?outcome=taken", **bearer).json()
    assert (row["event_age_ms"], row["decide_us"], row["ack_ms"]) == (
        details["event_age_ms"],
        details["decide_us"],
        details["ack_ms"],
    )
    state = client.get("/api/state", **bearer).json()
    assert state["engine_current"] is True and state["engine_problem"] == ""
    assert state["engine"]["latency"]["ack_ms"]["p99"] == details["ack_ms"]


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_new_run_replaces_the_last_runs_figures_at_once_even_with_the_venue_unreachable(
    redis_db, client, api_token
):
    """The report: /api/state showed `ready` with the previous sim run's figures after the
    engine started in demo mode with the exchange unreachable."""
    now_ms = time.time_ns() // 1_000_000
    redis_db.set(
        keys.ENGINE_STATS,
        json.dumps(
            {"ready": True, "mode": "sim", "run_id": "previous", "phase": "running", "at_ms": now_ms}
            | {"entries_sent": 7, "skips": {"offset_not_met": 40}}
        ),
    )
    port = _dead_port()
    runner = EngineRunner(
        gateway=BybitGateway(
            mode="sim", api_key="k", api_secret="s", base_url=f"http://127.0.0.1:{port}", timeout=0.5
        ),
        endpoints=EngineEndpoints("binance", f"ws://127.0.0.1:{port}/ws", "ws://x", "ws://x", "k", "s"),
        startup_retry_s=0.2,
        mode="demo",
    )
    thread = EngineThread(runner)
    thread.thread.start()
    try:
        stats = wait_until(
            lambda: (s := published_stats(redis_db)).get("phase") == "waiting_for_venue" and s,
            what="the new run's figures",
        )
        assert stats["run_id"] == runner.run_info["run_id"] != "previous"
        assert (stats["mode"], stats["ready"], stats["entries_sent"], stats["skips"]) == (
            "demo",
            False,
            0,
            {},
        )
        assert stats["latency"]["ack_ms"] == {"count": 0, "p50": None, "p99": None}

        # This system runs in sim mode (the test settings): a demo run's figures are not current.
        body = client.get("/api/state", HTTP_AUTHORIZATION=f"Bearer {api_token}").json()
        assert body["engine"]["run_id"] == runner.run_info["run_id"]
        assert body["engine_current"] is False
        assert body["engine_problem"] == "figures of a demo run; this system runs in sim mode"
    finally:
        wait_until(lambda: thread.loop is not None and thread.stop_event is not None, what="the loop")
        thread.stop()
    assert published_stats(redis_db)["phase"] == "stopped"
