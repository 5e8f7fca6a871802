"""`make bench`: the liquidation path's speed, printed and written to bench/results/latest.json.

- decisions_per_s: recorded Binance messages through parse + decide alone, one core,
  every message going the whole way to an entry (the worst case).
- tick_to_order_p50_ms / _p99_ms: from a liquidation frame arriving at the engine's
  socket (the feed's wall clock right after `recv`) to the order request arriving at
  the simulator (its handler's wall clock), over --events liquidations. The simulator
  runs as its own process on 127.0.0.1 with the rate limit off; its account is too
  small to fill, so every order is refused (110007) and the symbol is free for the next
  liquidation: each event takes the full entry path, and nothing else changes.
- replay_events_per_s: the shipped sample (sample_data/) through the simulator's replay
  at maximum speed, the Binance-format feed and the engine, in liquidations per second.
- panic_to_flat_default_tier_s, panic_to_flat_s, panic_to_flat_25ms_s: 50 positions and
  200 resting orders to a verified-flat account through `panic_trigger`, at the default
  rate tier, a high tier, and the high tier with 25 ms added to every simulator answer
  (bench/panic_bench.py; the median of --panic-runs runs).
- daily_stop_to_flat_s: from the price move that makes the day -5.25 % to the verified-flat
  account, 20 positions, a high tier, the risk watch alone (bench/daily_stop_bench.py; the
  median of --daily-runs runs).
- backtest_events_per_s: liquidations per second through `manage.py backtest`'s whole run
  (load, VWAP, decide, the simulator's fills, the risk rules), one core, over --data with
  the demo coins (bench/backtest_bench.py; the fastest of five runs).

The engine runs exactly as `run_engine` does (EngineRunner: real gateway over pybit,
real feeds, real Redis), on a throwaway SQLite database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
REPLAY_STALL_S = 20.0
# How long the engine's liquidation stream may take to be connected and registered by the
# venue after the engine is ready (it takes well under a second): past it, the bench stops
# with a message instead of sending liquidations nobody receives.
LIQUIDATION_STREAM_DEADLINE_S = 15.0


class BenchError(RuntimeError):
    """A bench could not run as set up; the message says why (printed without a traceback)."""


def liquidation_stream_wait(
    sim_state, *, feed_connected, timeout_s: float = LIQUIDATION_STREAM_DEADLINE_S
) -> None:
    """Until the engine's liquidation feed is connected and the venue counts its client.

    `ready` means reconciled, not subscribed: a liquidation sent before the venue registered
    the stream is lost, as it would be live, and a bench waiting for it would wait out its
    whole deadline. ``sim_state``: the simulator's /sim/state; ``feed_connected``: the
    engine's side. Raises BenchError, saying which side never came, after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        connected = feed_connected()
        clients = sum(count for path, count in sim_state()["connections"].items() if "forceOrder" in path)
        if connected and clients:
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"the engine's liquidation stream was not ready within {timeout_s:.0f} s "
                f"(engine feed connected: {connected}; liquidation-stream clients at the simulator: "
                f"{clients}); nothing was sent. Is the simulator's port reachable, and Redis up?"
            )
        time.sleep(0.02)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def setup_django(workdir: Path) -> str:
    """Settings for a throwaway database and Redis database 14; returns the Redis URL."""
    sys.path.insert(0, str(ROOT))
    from controlpanel.redis_boot import ensure_redis

    redis_url, _ = ensure_redis(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlpanel.settings",
            "CONTROLPANEL_READ_DOTENV": "0",
            "SECRET_KEY": "bench-only",
            "EXCHANGE_MODE": "sim",
            "LIQUIDATION_FEED": "sim",
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "REDIS_URL": redis_url,
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "ERROR"),
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return redis_url


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Simulator:
    """`python -m simulator` as a separate process."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--port", str(self.port), "--rate-tier", "off", *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.call("GET", "/v5/market/time")
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise BenchError("simulator did not start") from None
                time.sleep(0.1)

    def call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class Engine:
    """The EngineRunner on its own loop in a thread, as run_engine runs it."""

    def __init__(self, sim: Simulator):
        import asyncio

        from trading.bybit import BybitGateway
        from trading.engine_runner import EngineEndpoints, EngineRunner

        ws = sim.base_url.replace("http://", "ws://")
        gateway = BybitGateway(
            mode="sim", api_key="sim-api-key", api_secret="sim-api-secret", base_url=sim.base_url, timeout=5.0
        )
        endpoints = EngineEndpoints(
            "sim",
            f"{ws}/ws/!forceOrder@arr",
            f"{ws}/v5/public/linear",
            f"{ws}/v5/private",
            "sim-api-key",
            "sim-api-secret",
        )
        self.runner = EngineRunner(gateway=gateway, endpoints=endpoints, journal_interval_s=0.5)
        self._stop: asyncio.Event | None = None

        def main():
            async def run():
                self.loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                await self.runner.run(self._stop)

            asyncio.run(run())

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.runner.ready.is_set():
            if time.monotonic() > deadline:
                raise BenchError(f"the engine was not ready within 60 s (phase {self.runner.phase})")
            time.sleep(0.05)

    @property
    def engine(self):
        return self.runner.engine

    def wait_for_prices(self, symbols, timeout_s: float = 30) -> None:
        """Until the market stream has given a price for each symbol (ready != subscribed)."""
        deadline = time.monotonic() + timeout_s
        while not all((m := self.engine.market.get(s)) is not None and m.last_price for s in symbols):
            if time.monotonic() > deadline:
                raise BenchError("no prices from the market stream")
            time.sleep(0.02)

    def wait_for_liquidation_stream(self, sim: Simulator) -> None:
        """Until the venue has registered the engine's liquidation stream (see liquidation_stream_wait)."""
        liquidation_stream_wait(
            lambda: sim.call("GET", "/sim/state"),
            feed_connected=lambda: self.runner.liquidation_feed.stats.connected,
        )

    def stop(self):
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=60)


def make_coin(symbol: str, **fields):
    from trading.models import Coin

    values = dict(
        enabled=True,
        long_offset_pct=Decimal("0.5"),
        short_offset_pct=Decimal("0.5"),
        min_liquidation_usdt=Decimal("1"),
        order_size_usdt=Decimal("100"),
        leverage=10,
        take_profit_pct=Decimal("1"),
        stop_loss_pct=Decimal("2"),
        vwap_window_minutes=60,
        entry_cooldown_seconds=0,
    )
    values.update(fields)
    return Coin.objects.update_or_create(symbol=symbol, defaults=values)[0]


def bench_decisions(seconds: float) -> float:
    sys.path.insert(0, str(ROOT / "bench"))
    import decision_bench

    return decision_bench.entry_path_rate(seconds)


def bench_tick_to_order(events: int) -> dict:
    from trading.models import Decision

    Decision.objects.all().delete()
    make_coin("BTCUSDT")
    sim = Simulator("--equity", "1")
    try:
        start_price = Decimal(sim.call("GET", "/sim/state")["prices"]["BTCUSDT"])
        low = (start_price * Decimal("0.97")).quantize(Decimal("0.1"))
        engine = Engine(sim)
        try:
            engine.wait_for_liquidation_stream(sim)
            sim.call("POST", "/sim/price", {"symbol": "BTCUSDT", "price": str(low)})
            while engine.engine.market.get("BTCUSDT").last_price != low:
                time.sleep(0.01)
            warmup = 200
            for index in range(events + warmup):
                done_before = engine.engine.entries_answered
                sim.call(
                    "POST",
                    "/sim/liquidation",
                    {"symbol": "BTCUSDT", "side": "SELL", "price": str(low), "qty": "1"},
                )
                deadline = time.monotonic() + 10
                while engine.engine.entries_answered == done_before:
                    if time.monotonic() > deadline:
                        raise BenchError(f"no order for liquidation {index}: {engine.engine.stats()}")
                    time.sleep(0.001)
            time.sleep(1.5)  # the journal flusher writes the last batch
        finally:
            engine.stop()
        received = {o["orderLinkId"]: o["receivedNs"] for o in sim.call("GET", "/sim/state")["orders"]}
    finally:
        sim.stop()
    rows = list(Decision.objects.filter(strategy="wl").exclude(order_link_id="").order_by("created_at", "id"))
    latencies = [
        (received[row.order_link_id] - row.details["frame_ns"]) / 1e6
        for row in rows[warmup:]
        if row.order_link_id in received
    ]
    if len(latencies) < events:
        raise BenchError(f"only {len(latencies)} of {events} orders matched")
    return {
        "tick_to_order_p50_ms": round(percentile(latencies, 0.50), 3),
        "tick_to_order_p99_ms": round(percentile(latencies, 0.99), 3),
        "tick_to_order_max_ms": round(max(latencies), 3),
        "tick_to_order_events": len(latencies),
    }


def bench_replay(data_dir: Path) -> dict:
    symbols = sorted(path.stem for path in (data_dir / "klines").glob("*.csv"))
    for symbol in symbols:
        make_coin(symbol, min_liquidation_usdt=Decimal("1000000000"))  # decide every event, enter none
    total = sum(1 for line in (data_dir / "liquidations.jsonl").read_text().splitlines() if line.strip())
    sim = Simulator("--data", str(data_dir), "--speed", "max", "--no-autostart")
    try:
        engine = Engine(sim)
        try:
            engine.wait_for_liquidation_stream(sim)
            seen_before = engine.engine.events_seen
            started = time.perf_counter()
            sim.call("POST", "/sim/replay", {})
            # Done when every liquidation arrived, or when none has for REPLAY_STALL_S (say so).
            last_seen, last_change = seen_before, time.monotonic()
            while engine.engine.events_seen - seen_before < total:
                if engine.engine.events_seen != last_seen:
                    last_seen, last_change = engine.engine.events_seen, time.monotonic()
                elif time.monotonic() - last_change > REPLAY_STALL_S:
                    break
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
            seen = engine.engine.events_seen - seen_before
        finally:
            engine.stop()
    finally:
        sim.stop()
    return {
        "replay_events": seen,
        "replay_events_expected": total,
        "replay_events_per_s": round(seen / elapsed, 1),
        "replay_seconds": round(elapsed, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmarks of the liquidation path.")
    parser.add_argument("--events", type=int, default=10_000, help="liquidations for tick-to-order")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of the decision throughput run")
    parser.add_argument("--data", type=Path, default=ROOT / "sample_data", help="replay directory")
    parser.add_argument("--no-save", action="store_true", help="print only; don't write latest.json")
    parser.add_argument("--panic-runs", type=int, default=3, help="runs of each panic scenario (the median)")
    parser.add_argument("--daily-runs", type=int, default=3, help="runs of the daily-stop bench (the median)")
    parser.add_argument(
        "--only",
        choices=("all", "liquidation", "panic", "daily", "backtest"),
        default="all",
        help="which benches (default all)",
    )
    args = parser.parse_args()
    try:
        return run(args)
    except BenchError as problem:
        print(f"make bench: {problem}", file=sys.stderr, flush=True)
        return 2


def run(args) -> int:
    results: dict = {}
    if args.only in ("all", "liquidation"):
        results["decisions_per_s"] = round(bench_decisions(args.seconds))
        print(f"decisions_per_s        {results['decisions_per_s']:>12,}", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        setup_django(Path(workdir))
        if args.only in ("all", "liquidation"):
            run_liquidation_benches(args, results)
        if args.only in ("all", "panic"):
            run_panic_bench(args, results)
        if args.only in ("all", "daily"):
            run_daily_stop_bench(args, results)
        # -- backtest (controlpanel.backtest, issue 22) --
        if args.only in ("all", "backtest"):
            run_backtest_bench(args, results)
    results.update(
        {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu",
            "load_average": [round(value, 2) for value in os.getloadavg()],
        }
    )
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        # A partial run (--only) keeps the other benches' last figures.
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() and args.only != "all" else {}
        RESULTS.write_text(json.dumps({**previous, **results}, indent=2) + "\n")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


def run_panic_bench(args, results: dict) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import panic_bench

    figures = panic_bench.bench_panic(Simulator, runs=args.panic_runs)
    results.update(figures)
    for key, _tier, _latency in panic_bench.SCENARIOS:
        detail = figures[key.removesuffix("_s") + "_detail"]
        print(
            f"{key:<29}{figures[key]:>7} s   runs {detail['runs_s']}  "
            f"rounds {detail['rounds']}  phases {detail['median_run_timings_ms']}",
            flush=True,
        )


def run_daily_stop_bench(args, results: dict) -> None:
    from bench.daily_stop_bench import bench_daily_stop

    figures = bench_daily_stop(Simulator, runs=args.daily_runs)
    results.update(figures)
    detail = figures["daily_stop_detail"]
    print(
        f"daily_stop_to_flat_s   {figures['daily_stop_to_flat_s']:>12} s   runs {detail['runs_s']}  "
        f"flat seen {detail['flat_seen_s']}  ({detail['book']})",
        flush=True,
    )


def run_backtest_bench(args, results: dict) -> None:
    from bench.backtest_bench import bench_backtest

    results.update(bench_backtest(args.data))
    detail = results["backtest_detail"]
    print(
        f"backtest_events_per_s  {results['backtest_events_per_s']:>12,}   "
        f"({detail['liquidations']:,} liquidations and {detail['price_steps']:,} price steps, "
        f"runs {detail['runs_s']} s)",
        flush=True,
    )


def run_liquidation_benches(args, results: dict) -> None:
    results.update(bench_tick_to_order(args.events))
    print(
        f"tick_to_order_p50_ms   {results['tick_to_order_p50_ms']:>12}   "
        f"p99 {results['tick_to_order_p99_ms']} ms  max {results['tick_to_order_max_ms']} ms  "
        f"({results['tick_to_order_events']:,} events)",
        flush=True,
    )
    results.update(bench_replay(args.data))
    print(
        f"replay_events_per_s    {results['replay_events_per_s']:>12,}   "
        f"({results['replay_events']:,} of {results['replay_events_expected']:,} liquidations "
        f"in {results['replay_seconds']} s)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
