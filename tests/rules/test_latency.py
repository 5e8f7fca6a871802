"""The engine's latency window: nearest-rank p50/p99 over the last hour, bounded in memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.rules.latency import HOUR_MS, LatencyWindow, percentile


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([], 50, None),
        ([7.0], 50, 7.0),
        ([7.0], 99, 7.0),
        ([1, 2, 3, 4], 50, 2),  # rank ceil(0.5 x 4) = 2
        ([1, 2, 3, 4, 5], 50, 3),
        (list(range(1, 101)), 99, 99),
        (list(range(1, 201)), 99, 198),
        (list(range(1, 11)), 99, 10),  # ten samples: p99 is the largest
    ],
)
def test_percentile_is_nearest_rank(values, pct, expected):
    assert percentile(values, pct) == expected


def test_the_summary_covers_the_last_hour_only():
    window = LatencyWindow()
    window.add(1_000, 50.0)  # more than an hour before now: dropped
    window.add(2_000, 3.0)
    window.add(HOUR_MS + 1_500, 5.0)
    window.add(HOUR_MS + 1_600, 4.0)
    assert window.summary(HOUR_MS + 1_999) == {"count": 3, "p50": 4.0, "p99": 5.0}
    assert len(window.samples) == 3
    assert window.summary(3 * HOUR_MS) == {"count": 0, "p50": None, "p99": None}
    assert len(window.samples) == 0


def test_it_never_holds_more_than_its_bound():
    window = LatencyWindow(max_samples=5)
    for at in range(100):
        window.add(at, float(at))
    assert len(window.samples) == 5
    assert window.summary(100) == {"count": 5, "p50": 97.0, "p99": 99.0}


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300))
def test_p50_and_p99_are_measured_values_in_order(values):
    window = LatencyWindow()
    for value in values:
        window.add(10, value)
    summary = window.summary(20)
    assert summary["count"] == len(values)
    assert summary["p50"] in values and summary["p99"] in values
    assert min(values) <= summary["p50"] <= summary["p99"] <= max(values)
