"""Replay a recorded (or generated) market through the simulator and the real engine, and
report what the engine decided and how the account ended.

    .venv/bin/python -m bench.replay_report --data sample_data [--speed max] [--coins coins.json]

The coins come from a coins.json (default: the demo configuration) limited to the
symbols the data has klines for. Nothing here is a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

from bench.__main__ import ROOT, BenchError, Engine, Simulator, setup_django


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "sample_data")
    parser.add_argument("--speed", default="max", help="replay speed (default max)")
    parser.add_argument("--coins", type=Path, default=ROOT / "controlpanel" / "demo" / "coins.json")
    parser.add_argument("--equity", default="10000")
    args = parser.parse_args()
    try:
        return report(args)
    except BenchError as problem:
        print(f"bench.replay_report: {problem}", file=sys.stderr, flush=True)
        return 2


def report(args) -> int:
    with tempfile.TemporaryDirectory() as workdir:
        setup_django(Path(workdir))
        from controlpanel.config_files import config_import
        from trading.models import Decision

        symbols = {path.stem for path in (args.data / "klines").glob("*.csv")}
        coins = [c for c in json.loads(args.coins.read_text()) if _symbol(c["symbol"]) in symbols]
        for coin in coins:
            coin["entry_cooldown_seconds"] = 0  # the replay runs faster than any real cooldown
        config_import(coins=coins)
        liquidations = sum(1 for line in (args.data / "liquidations.jsonl").open() if line.strip())
        sim = Simulator(
            "--data", str(args.data), "--speed", args.speed, "--no-autostart", "--equity", args.equity
        )
        try:
            engine = Engine(sim)
            try:
                engine.wait_for_prices([_symbol(c["symbol"]) for c in coins])
                engine.wait_for_liquidation_stream(sim)
                started = time.perf_counter()
                sim.call("POST", "/sim/replay", {})
                while time.perf_counter() - started < 3600:
                    replay = sim.call("GET", "/sim/state")["replay"]
                    if replay["status"] not in ("idle", "running") and engine.engine.orders_in_flight == 0:
                        break
                    time.sleep(0.2)
                time.sleep(1.5)  # the last journal batch
                elapsed = time.perf_counter() - started
            finally:
                engine.stop()
            state = sim.call("GET", "/sim/state")
        finally:
            sim.stop()
        outcomes = Counter(Decision.objects.filter(strategy="wl").values_list("outcome", "reason_code"))
        events = engine.engine.events_seen
        print(
            f"data {args.data}: {liquidations:,} liquidations, "
            f"{len(coins)} coins ({', '.join(sorted(symbols))})"
        )
        print(
            f"engine saw {events:,} events in {elapsed:.1f} s; not configured (counted, not journaled): "
            f"{engine.engine.skip_counts.get('not_configured', 0):,}"
        )
        for (outcome, reason), count in sorted(outcomes.items(), key=lambda item: -item[1]):
            print(f"  {outcome:<8} {reason:<24} {count:>6,}")
        stale = Counter(Decision.objects.filter(reason_code="stale_price").values_list("symbol", flat=True))
        if stale:
            print(f"  stale_price by symbol: {dict(stale)}")
        wallet = state["wallet"]
        orders = [o for o in state["orders"] if o["orderLinkId"].startswith("wl-")]
        print(
            f"orders {len(orders)}, refused {sum(1 for o in orders if o.get('rejectCode'))}; "
            f"open positions {len(state['positions'])}"
        )
        print(
            f"equity {Decimal(wallet['totalEquity']):.2f} USDT (from {args.equity}), "
            f"IM {Decimal(wallet['accountIMRate'] or 0) * 100:.2f} %"
        )
    return 0


def _symbol(raw: str) -> str:
    raw = raw.upper()
    return raw if raw.endswith("USDT") else raw + "USDT"


if __name__ == "__main__":
    raise SystemExit(main())
