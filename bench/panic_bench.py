"""The panic at the exchange's speed limit: 50 positions and 200 resting orders to flat.

Each run: a fresh account on the simulator (its own process on 127.0.0.1) with 50
positions of 50 symbols (longs and shorts, exposures from 1,000 to 50,000 USDT) and 200
resting limit orders (4 per symbol, far from the price), built with the rate limit off;
then the scenario's rate tier and added latency are set (`POST /sim/settings`) and
`panic_trigger` runs in this process, exactly as `POST /panic` calls it (a fresh gateway
from the settings, the lock, the flatten, the journal). The figure is its wall time, from
the call to the verification's answer that the account is flat (the receipt's `total`:
lock, cancel, closes, verification); the whole call, with the journal rows and the alert
after it, is in `*_detail.call_median_s`. A run that does not end flat fails the bench.

- panic_to_flat_default_tier_s: the default tier (10 single + 10 batch orders per second):
  the floor is the closes' rate, about 50 / 20 per s.
- panic_to_flat_s: a high tier (pro1, 200 orders per second): one wave of closes.
- panic_to_flat_25ms_s: the high tier with 25 ms added to every simulator answer: about
  three round trips (cancel + read, closes, verification) plus the lock.

The median of --runs runs each (default 3).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

SYMBOLS = 50
RESTING_PER_SYMBOL = 4
HIGH_TIER = "pro1"
SCENARIOS = (
    ("panic_to_flat_default_tier_s", "default", 0),
    ("panic_to_flat_s", HIGH_TIER, 0),
    ("panic_to_flat_25ms_s", HIGH_TIER, 25),
)
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)


def symbol_name(index: int) -> str:
    return f"C{index:02d}USDT"


def write_market(directory: Path) -> None:
    """A replay directory of 50 symbols at price 10.00 + index, qty step 0.1 (never replayed)."""
    klines = directory / "klines"
    klines.mkdir(parents=True)
    open_ms = int(time.time() // 60 * 60_000)
    for index in range(SYMBOLS):
        price = f"{10 + index}.00"
        row = f"{open_ms},{price},{price},{price},{price},1000.0,{open_ms + 59_999},0,1,0,0,0"
        (klines / f"{symbol_name(index)}.csv").write_text(f"{KLINE_HEADER}\n{row}\n")


def build_book(gateway) -> None:
    """50 positions (even indexes long, odd short; exposure 1,000 x (index + 1) USDT) and 200
    resting limit orders, placed in batches with the simulator's rate limit off."""
    from trading.bybit import OrderRequest, OrderType
    from trading.rules import Side

    entries, resting = [], []
    for index in range(SYMBOLS):
        symbol = symbol_name(index)
        price = Decimal(10 + index)
        qty = (Decimal(1000 * (index + 1)) / price).quantize(Decimal("0.1"))
        side = Side.BUY if index % 2 == 0 else Side.SELL
        entries.append(OrderRequest(symbol, side, qty, f"bench-entry-{index}", reference_price=price))
        for leg in range(RESTING_PER_SYMBOL):
            below = (price * Decimal("0.5") - leg).quantize(Decimal("0.01"))
            resting.append(
                OrderRequest(
                    symbol,
                    Side.BUY,
                    Decimal("10.0"),
                    f"bench-rest-{index}-{leg}",
                    order_type=OrderType.LIMIT,
                    price=max(below, Decimal("0.01")),
                )
            )
    for orders in (entries, resting):
        failed = [r for r in gateway.place_orders_batch(orders=orders) if not r.ok]
        if failed:
            raise RuntimeError(f"the bench book was refused: {failed[0].error}")


def run_once(sim, tier: str, latency_ms: int) -> dict:
    from panic.services import panic_trigger
    from trading.bybit import BybitGateway

    sim.call("POST", "/sim/reset", {"equity": "100000000"})  # the start settings: rate limit off
    setup = BybitGateway(
        mode="sim", api_key="sim-api-key", api_secret="sim-api-secret", base_url=sim.base_url
    )
    setup.prepare()
    build_book(setup)
    state = sim.call("GET", "/sim/state")
    open_orders = [o for o in state["orders"] if o["orderStatus"] == "New"]
    if len(state["positions"]) != SYMBOLS or len(open_orders) != SYMBOLS * RESTING_PER_SYMBOL:
        raise RuntimeError(f"bench book: {len(state['positions'])} positions, {len(open_orders)} orders")
    # A new tier starts a fresh rate window: nothing of the set-up counts against the panic.
    sim.call("POST", "/sim/settings", {"rateTier": tier, "latencyMs": latency_ms})
    started = time.perf_counter()
    result = panic_trigger(by="bench", reason="bench")
    elapsed = time.perf_counter() - started
    sim.call("POST", "/sim/settings", {"latencyMs": 0})
    left = sim.call("GET", "/sim/state")["positions"]
    if not result.flat or left:
        raise RuntimeError(f"the panic did not end flat: {result.errors[:3]} left {len(left)}")
    return {
        "seconds": result.timings_ms["total"] / 1000,
        "call_seconds": elapsed,
        "rounds": result.rounds,
        "timings_ms": result.timings_ms,
    }


def bench_panic(simulator_class, runs: int = 3) -> dict:
    """Every scenario `runs` times on one simulator; the medians (and the spread) in seconds."""
    from django.conf import settings

    results: dict = {}
    with tempfile.TemporaryDirectory() as market:
        write_market(Path(market))
        sim = simulator_class("--data", market, "--no-autostart", "--equity", "100000000")
        try:
            settings.SIM_BASE_URL = sim.base_url
            for key, tier, latency_ms in SCENARIOS:
                samples = [run_once(sim, tier, latency_ms) for _ in range(runs)]
                seconds = [sample["seconds"] for sample in samples]
                results[key] = round(statistics.median(seconds), 3)
                median_run = sorted(samples, key=lambda sample: sample["seconds"])[len(samples) // 2]
                results[key.removesuffix("_s") + "_detail"] = {
                    "runs_s": [round(value, 3) for value in seconds],
                    # The whole call: the journal rows and the (unconfigured) alert after the flat.
                    "call_median_s": round(statistics.median(s["call_seconds"] for s in samples), 3),
                    "median_run_timings_ms": median_run["timings_ms"],
                    "rounds": median_run["rounds"],
                }
        finally:
            sim.stop()
    results["panic_book"] = f"{SYMBOLS} positions, {SYMBOLS * RESTING_PER_SYMBOL} resting orders"
    return results
