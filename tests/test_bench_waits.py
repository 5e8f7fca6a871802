"""`make bench` never sends liquidations into a stream the venue has not registered: it waits
for the engine's liquidation stream on both sides, and stops fast with a message when it
does not come (it used to wait out its whole deadline)."""

from __future__ import annotations

import time

import pytest
from websockets.sync.client import connect

from bench.__main__ import BenchError, liquidation_stream_wait

pytestmark = pytest.mark.integration


def test_the_bench_stops_within_its_deadline_saying_the_stream_never_registered(sim):
    started = time.monotonic()
    with pytest.raises(BenchError, match=r"not ready within 1 s .*clients at the simulator: 0\)"):
        liquidation_stream_wait(sim.state, feed_connected=lambda: True, timeout_s=1)
    assert time.monotonic() - started < 3


def test_the_bench_waits_for_the_engine_side_too(sim):
    with connect(sim.liquidation_ws_url), pytest.raises(BenchError, match="engine feed connected: False"):
        liquidation_stream_wait(sim.state, feed_connected=lambda: False, timeout_s=0.5)


def test_the_bench_goes_on_once_the_venue_counts_the_client(sim):
    with connect(sim.liquidation_ws_url):
        started = time.monotonic()
        liquidation_stream_wait(sim.state, feed_connected=lambda: True, timeout_s=5)
        assert time.monotonic() - started < 2
