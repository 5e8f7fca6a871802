"""backtest_events_per_s: liquidations per second through the whole backtest, one core.

The replay directory (default sample_data/, the demo coins' symbols) is loaded, laid out
as a timeline and run through ``controlpanel.backtest`` with the demo configuration, as
``manage.py backtest`` runs it without the report: the figure is liquidations / seconds
of load + run: the fastest of ``runs`` runs, as timeit reports (on a shared machine the
slower runs measure the neighbours).
"""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_COINS = ROOT / "controlpanel" / "demo" / "coins.json"


def bench_backtest(data_dir: Path, runs: int = 5) -> dict:
    """Needs Django set up (the coins go through the real import, rolled back)."""
    from controlpanel.backtest.config import backtest_config
    from controlpanel.backtest.runner import backtest_directory

    coins, risk = backtest_config(coins_path=DEMO_COINS)
    seconds = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = backtest_directory(data_dir, coins=coins, risk=risk)
        seconds.append(time.perf_counter() - started)
    fastest = min(seconds)
    return {
        "backtest_events_per_s": round(result.liquidations / fastest),
        "backtest_detail": {
            "data": str(data_dir.relative_to(ROOT) if data_dir.is_relative_to(ROOT) else data_dir),
            "liquidations": result.liquidations,
            "price_steps": result.price_steps,
            "orders": len(result.orders),
            "runs_s": [round(value, 3) for value in seconds],
            "price_steps_per_s": round(result.price_steps / fastest),
        },
    }
