"""Latency figures over a sliding time window: bounded, pure, no clock of its own.

The engine records one sample per entry it places (event age, decision time, time to
the exchange's answer) and publishes p50/p99 over the last hour with its figures.
Samples live in a deque with a fixed ``maxlen``: an engine that trades more than that
in an hour reports over its newest ``maxlen`` entries, and memory never grows.
Percentiles are nearest-rank (``ceil(p/100 * n)``-th smallest), so every figure is
a value that was measured.
"""

from __future__ import annotations

import math
from collections import deque

HOUR_MS = 3_600_000
# Far above what WL places in an hour (each entry is a position, max_open_positions caps them).
MAX_SAMPLES = 4096


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class LatencyWindow:
    """Samples of one figure, ``(at_ms, value)``, oldest first."""

    __slots__ = ("samples", "window_ms")

    def __init__(self, *, window_ms: int = HOUR_MS, max_samples: int = MAX_SAMPLES) -> None:
        self.window_ms = window_ms
        self.samples: deque[tuple[int, float]] = deque(maxlen=max_samples)

    def add(self, at_ms: int, value: float) -> None:
        self.samples.append((at_ms, value))

    def summary(self, now_ms: int) -> dict[str, float | int | None]:
        """``{"count", "p50", "p99"}`` over the samples newer than ``now_ms - window_ms``
        (older ones are dropped here, so the deque holds at most one window)."""
        since = now_ms - self.window_ms
        samples = self.samples
        while samples and samples[0][0] <= since:
            samples.popleft()
        values = sorted(value for _, value in samples)
        return {"count": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99)}
