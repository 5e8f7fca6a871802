"""The daily stop at the speed of the account's streams: from the price move that crosses -5 %
to a verified-flat account, with 20 open positions, at a high rate tier.

Each run: a fresh account on the simulator (its own process on 127.0.0.1) with 20 longs of
2,500 USDT on 100,000 USDT, opened with the rate limit off; a fresh day (no DailyPnL row, no
daily disable); then the high tier (pro1) is set and the risk watch starts in this process
exactly as `run_risk_watch` runs it (RiskWatch: the shared worker gateway, the real private
and ticker streams, the daily control's own step). Nineteen prices fall 10 % (a -4.75 %
day: the watch must not act), and once the watch has seen every one of them, the twentieth
falls 20 %, which makes the day -5.25 %: that move is the start. The end is the answer of
the flatten's verification that the account is flat (the daily step's return, with its
journal row; `flat_seen_s` is when the simulator itself last held a position, polled every
2 ms). No beat runs: the figure is the watch's alone. A run that does not end flat with one
daily_stop fails the bench.

- daily_stop_to_flat_s: the median of --daily-runs runs (default 3).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from bench.panic_bench import symbol_name, write_market

POSITIONS = 20
EXPOSURE = Decimal(2500)
EQUITY = "100000"
HIGH_TIER = "pro1"


def start_price(index: int) -> Decimal:
    return Decimal(10 + index)  # as bench.panic_bench.write_market lays the market


def set_price(sim, index: int, factor: Decimal) -> None:
    price = (start_price(index) * factor).quantize(Decimal("0.01"))
    sim.call("POST", "/sim/price", {"symbol": symbol_name(index), "price": str(price)})


def build_longs(gateway) -> None:
    from trading.bybit import OrderRequest
    from trading.rules import Side

    orders = []
    for index in range(POSITIONS):
        price = start_price(index)
        qty = (EXPOSURE / price).quantize(Decimal("0.1"))
        link = f"bench-long-{index}"
        orders.append(OrderRequest(symbol_name(index), Side.BUY, qty, link, reference_price=price))
    failed = [r for r in gateway.place_orders_batch(orders=orders) if not r.ok]
    if failed:
        raise RuntimeError(f"the bench book was refused: {failed[0].error}")


def fresh_day() -> None:
    from core.models import TradingState
    from core.redis_client import redis_client
    from risk.models import DailyPnL
    from trading import worker_gateway
    from trading.models import Decision

    DailyPnL.objects.all().delete()
    Decision.objects.all().delete()
    TradingState.objects.update(disabled_until=None, disabled_reason="")
    redis_client().flushdb()
    worker_gateway._gateway = None


class WatchThread:
    def __init__(self, sim):
        from risk.watch import RiskWatch
        from trading.engine_runner import EngineEndpoints

        ws = sim.base_url.replace("http://", "ws://")
        endpoints = EngineEndpoints(
            "sim", "", f"{ws}/v5/public/linear", f"{ws}/v5/private", "sim-api-key", "sim-api-secret"
        )
        self.watch = RiskWatch(endpoints=endpoints)
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.watch.ready.is_set():
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the risk watch did not start")
            time.sleep(0.02)

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        await self.watch.run(self.stop_event)

    def wait_for(self, condition, what: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the risk watch never saw {what}")
            time.sleep(0.002)

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=30)


def run_once(sim) -> dict:
    from django.conf import settings

    from trading.models import Decision
    from trading.worker_gateway import worker_gateway

    sim.call("POST", "/sim/reset", {"equity": EQUITY})  # the start settings: rate limit off
    for index in range(POSITIONS):  # a reset keeps the last prices: back to the start
        set_price(sim, index, Decimal(1))
    fresh_day()
    settings.SIM_BASE_URL = sim.base_url
    build_longs(worker_gateway())
    sim.call("POST", "/sim/settings", {"rateTier": HIGH_TIER})
    watcher = WatchThread(sim)
    watch = watcher.watch
    try:
        watcher.wait_for(lambda: len(watch.marks.positions) == POSITIONS, "every position")
        for index in range(POSITIONS - 1):
            set_price(sim, index, Decimal("0.9"))
        nineteenth = symbol_name(POSITIONS - 2)
        watcher.wait_for(
            lambda: watch.marks.marks.get(nineteenth) == start_price(POSITIONS - 2) * Decimal("0.9"),
            "the nineteen moves",
        )
        if watch.counts["daily_acted"]:
            raise RuntimeError("the watch acted at -4.75 %")
        started = time.perf_counter()
        set_price(sim, POSITIONS - 1, Decimal("0.8"))
        flat_seen = None
        while not watch.counts["daily_acted"]:  # counted once the step returned
            if flat_seen is None and not sim.call("GET", "/sim/state")["positions"]:
                flat_seen = time.perf_counter() - started
            if time.perf_counter() - started > 30:
                raise RuntimeError("the daily stop did not fire within 30 s")
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
    finally:
        watcher.stop()
    summary = watch.last_acted or {}
    stops = Decision.objects.filter(action="daily_stop").count()
    if not summary.get("flat") or stops != 1 or sim.call("GET", "/sim/state")["positions"]:
        raise RuntimeError(f"the daily stop did not end flat once: {summary} ({stops} daily_stop rows)")
    return {"seconds": elapsed, "flat_seen_s": flat_seen, "pnl_pct": summary.get("pnl_pct")}


def bench_daily_stop(simulator_class, runs: int = 3) -> dict:
    with tempfile.TemporaryDirectory() as market:
        write_market(Path(market))
        sim = simulator_class("--data", market, "--no-autostart", "--equity", EQUITY)
        try:
            samples = [run_once(sim) for _ in range(runs)]
        finally:
            sim.stop()
    seconds = [sample["seconds"] for sample in samples]
    return {
        "daily_stop_to_flat_s": round(statistics.median(seconds), 3),
        "daily_stop_detail": {
            "runs_s": [round(value, 3) for value in seconds],
            "flat_seen_s": [s["flat_seen_s"] and round(s["flat_seen_s"], 3) for s in samples],
            "pnl_pct": samples[0]["pnl_pct"],
            "book": f"{POSITIONS} longs of {EXPOSURE} USDT on {EQUITY} USDT, tier {HIGH_TIER}",
        },
    }
