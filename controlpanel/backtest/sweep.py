"""A grid over coin settings, each point a full backtest, on all cores; the best as a coins.json.

Grid syntax: ``name=start:stop:step`` (stop included) or ``name=v1,v2,v3``, several names
separated by commas: ``long_offset_pct=0.2:1.0:0.2,min_liquidation_usdt=500,1000,5000``.
Names are Coin fields or the old coins.json keys (``long_vwap_offset``, ``lick_value``, ...);
every coin gets the point's values.

Objective (printed with the ranking): the highest net PnL among the points whose maximum
drawdown stays within ``max_drawdown_pct`` % of the starting equity; points over the limit
rank after all the others, by net PnL too. Ties keep the grid's order, so the ranking is
deterministic.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

from controlpanel.backtest.config import coins_document, field_name, with_values
from controlpanel.backtest.records import RiskConfig
from controlpanel.backtest.report import max_drawdown, report_write, summary
from controlpanel.backtest.runner import Backtest
from trading.rules.decision import CoinRule

HUNDRED = Decimal(100)


def parse_grid(text: str) -> dict[str, list[Decimal]]:
    """``"a=0.2:1.0:0.2,b=1,2"`` -> ``{"a_field": [0.2, 0.4, ...], "b_field": [1, 2]}``."""
    grid: dict[str, list[Decimal]] = {}
    current = None
    for token in (part.strip() for part in text.split(",")):
        if not token:
            continue
        if "=" in token:
            name, _, token = token.partition("=")
            current = field_name(name.strip())
            if current in grid:
                raise ValueError(f"{name} is given twice")
            grid[current] = []
        if current is None:
            raise ValueError(f"a value before any name: {token!r}")
        grid[current].extend(_values(token.strip()))
    if not grid or not all(grid.values()):
        raise ValueError(f"no values in {text!r}")
    return grid


def _values(token: str) -> list[Decimal]:
    try:
        if ":" not in token:
            return [Decimal(token)] if token else []
        start, stop, step = (Decimal(part) for part in token.split(":"))
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a number or start:stop:step: {token!r}") from None
    if step <= 0 or stop < start:
        raise ValueError(f"a range is start:stop:step with step > 0 and stop >= start, got {token!r}")
    values = []
    value = start
    while value <= stop:
        values.append(value)
        value += step
    return values


def grid_points(grid: dict[str, list[Decimal]]) -> list[dict[str, Decimal]]:
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


# -- the workers: each loads the replay once, then runs points -----------------------

_WORKER: dict = {}


def _worker_init(directory: str, coins: dict, risk: RiskConfig, equity: Decimal, window: dict) -> None:
    from simulator.replay import load

    _WORKER.update(
        data=load(directory),
        coins=coins,
        risk=risk,
        equity=equity,
        window=window,
    )


def _run_point(point: dict[str, Decimal]) -> dict:
    backtest = Backtest(
        data=_WORKER["data"],
        coins=with_values(_WORKER["coins"], point),
        risk=_WORKER["risk"],
        equity=_WORKER["equity"],
        **_WORKER["window"],
    )
    result = backtest.run()
    worst, _ = max_drawdown(result.equity_curve)
    return {
        "point": {name: str(value) for name, value in point.items()},
        "net_pnl": result.end_equity - result.start_equity,
        "max_drawdown": worst,
        "fees": result.fees,
        "trades": len(result.trades),
        "wins": sum(1 for trade in result.trades if trade.net > 0),
    }


def sweep_run(
    directory: Path,
    *,
    coins: dict[str, CoinRule],
    risk: RiskConfig,
    grid: dict[str, list[Decimal]],
    equity: Decimal,
    max_drawdown_pct: Decimal,
    workers: int = 0,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> list[dict]:
    """Every grid point's figures, best first (the objective in the module docstring)."""
    points = grid_points(grid)
    window = {"from_ms": from_ms, "to_ms": to_ms}
    processes = min(len(points), workers or os.cpu_count() or 1)
    initargs = (str(directory), coins, risk, equity, window)
    if processes == 1:
        _worker_init(*initargs)
        rows = [_run_point(point) for point in points]
    else:
        # fork: the workers inherit Django's setup; they touch no database.
        context = multiprocessing.get_context("fork")
        with context.Pool(processes, initializer=_worker_init, initargs=initargs) as pool:
            rows = pool.map(_run_point, points, chunksize=1)
    limit = equity * max_drawdown_pct / HUNDRED
    for index, row in enumerate(rows):
        row["index"] = index
        row["within_limit"] = row["max_drawdown"] <= limit
    rows.sort(key=lambda row: (not row["within_limit"], -row["net_pnl"], row["index"]))
    return rows


def sweep_command(
    stdout,
    *,
    data: Path,
    coins: dict[str, CoinRule],
    risk: RiskConfig,
    equity: Decimal,
    grid: str,
    max_drawdown_pct: Decimal,
    workers: int,
    out: Path,
    from_ms: int | None,
    to_ms: int | None,
) -> None:
    """`manage.py backtest --sweep`: run, print the ranking, write the best coins.json and its report."""
    try:
        parsed = parse_grid(grid)
    except ValueError as error:
        from django.core.management.base import CommandError

        raise CommandError(f"--sweep: {error}") from None
    points = len(grid_points(parsed))
    stdout.write(
        f"sweep: {points} points on {min(points, workers or os.cpu_count() or 1)} processes; objective: "
        f"highest net PnL with max drawdown <= {max_drawdown_pct} % of {equity} USDT "
        f"({equity * max_drawdown_pct / HUNDRED} USDT)"
    )
    rows = sweep_run(
        data,
        coins=coins,
        risk=risk,
        grid=parsed,
        equity=equity,
        max_drawdown_pct=max_drawdown_pct,
        workers=workers,
        from_ms=from_ms,
        to_ms=to_ms,
    )
    stdout.write(f"{'rank':>4}  {'point':<48}{'net':>12}{'max dd':>10}{'fees':>9}{'trades':>7}  limit")
    for rank, row in enumerate(rows[:15], start=1):
        point = ", ".join(f"{name}={value}" for name, value in row["point"].items())
        stdout.write(
            f"{rank:>4}  {point:<48}{row['net_pnl']:>12.4f}{row['max_drawdown']:>10.4f}"
            f"{row['fees']:>9.4f}{row['trades']:>7}  {'ok' if row['within_limit'] else 'over'}"
        )
    best = rows[0]
    best_coins = with_values(coins, {name: Decimal(value) for name, value in best["point"].items()})
    out = Path(out)
    coins_path = out.with_name(out.stem + "-best-coins.json")
    coins_path.write_text(json.dumps(coins_document(best_coins), indent=2) + "\n")
    ranking_path = out.with_name(out.stem + "-sweep.json")
    ranking_path.write_text(
        json.dumps(
            [{**row, **{k: str(row[k]) for k in ("net_pnl", "max_drawdown", "fees")}} for row in rows],
            indent=1,
        )
        + "\n"
    )
    from controlpanel.backtest.runner import backtest_directory

    result = backtest_directory(
        data, coins=best_coins, risk=risk, equity=equity, from_ms=from_ms, to_ms=to_ms
    )
    report_write(summary(result), out, title=f"{data.name} (best of sweep)")
    if not best["within_limit"]:
        stdout.write("no point kept the drawdown within the limit; the best over it is written")
    stdout.write(
        f"best coins.json {coins_path} (manage.py import_config --coins {coins_path}); "
        f"ranking {ranking_path}; its report {out}"
    )
