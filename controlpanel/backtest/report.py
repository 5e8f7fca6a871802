"""A backtest's result as a JSON summary, one self-contained HTML page and a terminal table.

The summary is plain JSON with money as strings (Decimal, never float) and keys sorted,
so the same run gives byte-identical files. The HTML page inlines the vendored Chart.js
and the summary: it opens offline, from a file:// URL or an e-mail attachment.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from controlpanel.backtest.records import BacktestResult, Trade

CHART_JS = Path(__file__).resolve().parent.parent / "static" / "vendor" / "chartjs" / "chart.umd.min.js"
CENTS = Decimal("0.0001")
ZERO = Decimal(0)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENTS))


def _trade_row(trade: Trade) -> dict:
    return {
        "symbol": trade.symbol,
        "side": trade.side,
        "qty": str(trade.qty),
        "entry_time": _iso(trade.entry_ms),
        "entry_price": str(trade.entry_price),
        "decision_price": str(trade.decision_price),
        "exit_time": _iso(trade.exit_ms),
        "exit_price": None if trade.exit_price is None else str(trade.exit_price),
        "reason": trade.reason,
        "pnl": _money(trade.pnl),
        "fees": _money(trade.fees),
        "net": _money(trade.net),
        "order_link_id": trade.order_link_id,
        "liquidation": trade.liquidation,
    }


def _rate(wins: int, trades: int) -> str:
    """Percent, one decimal; "0" without trades."""
    return str((Decimal(wins * 100) / trades).quantize(Decimal("0.1"))) if trades else "0"


def max_drawdown(curve: list[tuple[int, Decimal]]) -> tuple[Decimal, list[Decimal]]:
    """The largest fall from a running peak (USDT), and the drawdown at each point."""
    peak = None
    worst = ZERO
    series = []
    for _, equity in curve:
        peak = equity if peak is None or equity > peak else peak
        drawdown = peak - equity
        series.append(drawdown)
        worst = max(worst, drawdown)
    return worst, series


def summary(result: BacktestResult) -> dict:
    """The JSON summary: totals, per coin, per day, each trade, the skips and the curves."""
    per_coin: dict[str, dict] = defaultdict(
        lambda: {"trades": 0, "closed": 0, "wins": 0, "pnl": ZERO, "fees": ZERO, "net": ZERO}
    )
    reasons: dict[str, int] = defaultdict(int)
    for trade in result.trades:
        row = per_coin[trade.symbol]
        row["trades"] += 1
        # Win rates count closed trades: an open one's PnL is not settled.
        closed = trade.reason != "open"
        row["closed"] += closed
        row["wins"] += closed and trade.net > 0
        row["pnl"] += trade.pnl
        row["fees"] += trade.fees
        row["net"] += trade.net
        reasons[trade.reason] += 1
    coins = {
        symbol: {
            "trades": row["trades"],
            "closed": row["closed"],
            "wins": row["wins"],
            "win_rate_pct": _rate(row["wins"], row["closed"]),
            "pnl": _money(row["pnl"]),
            "fees": _money(row["fees"]),
            "net": _money(row["net"]),
        }
        for symbol, row in sorted(per_coin.items())
    }
    worst, drawdowns = max_drawdown(result.equity_curve)
    net = result.end_equity - result.start_equity
    closed = [trade for trade in result.trades if trade.reason != "open"]
    wins = sum(1 for trade in closed if trade.net > 0)
    return {
        "from": _iso(result.from_ms),
        "to": _iso(result.to_ms),
        "liquidations": result.liquidations,
        "price_steps": result.price_steps,
        "start_equity": _money(result.start_equity),
        "end_equity": _money(result.end_equity),
        "wallet_balance": _money(result.wallet_balance),
        "net_pnl": _money(net),
        "fees": _money(result.fees),
        "max_drawdown": _money(worst),
        "orders": len(result.orders),
        "trades": len(result.trades),
        "wins": wins,
        "closed_trades": len(closed),
        "win_rate_pct": _rate(wins, len(closed)),
        "exit_reasons": dict(sorted(reasons.items())),
        "skip_reasons": dict(sorted(result.skips.items())),
        "coins": coins,
        "days": [
            {
                "date": day.date,
                "baseline": _money(day.baseline),
                "end_equity": _money(day.end_equity),
                "pnl": _money(day.end_equity - day.baseline),
                "outcome": day.outcome,
                "fired_at": _iso(day.fired_ms),
            }
            for day in result.days
        ],
        "limit_days": [day.date for day in result.days if day.outcome != "open"],
        "trade_list": [_trade_row(trade) for trade in result.trades],
        "equity_curve": [
            [_iso(ms), _money(equity), _money(drawdown)]
            for (ms, equity), drawdown in zip(result.equity_curve, drawdowns, strict=True)
        ],
    }


def summary_json(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def terminal_table(data: dict) -> str:
    """A few lines for the terminal: totals, then one line per coin."""
    lines = [
        f"liquidations {data['liquidations']:,}   orders {data['orders']}   trades {data['trades']}   "
        f"win rate {data['win_rate_pct']} %",
        f"equity {data['start_equity']} -> {data['end_equity']} USDT   net {data['net_pnl']}   "
        f"fees {data['fees']}   max drawdown {data['max_drawdown']}",
        f"{'coin':<12}{'trades':>7}{'win %':>8}{'pnl':>12}{'fees':>10}{'net':>12}",
    ]
    for symbol, row in data["coins"].items():
        lines.append(
            f"{symbol:<12}{row['trades']:>7}{row['win_rate_pct']:>8}{row['pnl']:>12}"
            f"{row['fees']:>10}{row['net']:>12}"
        )
    skips = ", ".join(f"{reason} {count:,}" for reason, count in data["skip_reasons"].items())
    lines.append(f"skips: {skips or 'none'}")
    if data["limit_days"]:
        lines.append(f"daily target/stop fired on: {', '.join(data['limit_days'])}")
    return "\n".join(lines)


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backtest {title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.3em; }} h2 {{ font-size: 1.1em; margin-top: 1.5em; }}
.totals span {{ display: inline-block; margin-right: 1.5em; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
th {{ background: #f0f0f0; }}
.chart {{ position: relative; height: 260px; max-width: 1100px; }}
</style></head><body>
<h1>Backtest {title}</h1>
<p class="totals">{totals}</p>
<h2>Equity and drawdown</h2><div class="chart"><canvas id="equity-chart"></canvas></div>
<h2>Daily PnL</h2><div class="chart" style="height:180px"><canvas id="daily-chart"></canvas></div>
{days}
<h2>Per coin</h2>{coins}
<h2>Skip reasons</h2>{skips}
<h2>Trades</h2>{trades}
<script>{chartjs}</script>
<script id="summary" type="application/json">{summary}</script>
<script>
const data = JSON.parse(document.getElementById("summary").textContent);
const labels = data.equity_curve.map(row => row[0].slice(5, 16).replace("T", " "));
window.equityChart = new Chart(document.getElementById("equity-chart"), {{
  type: "line",
  data: {{ labels, datasets: [
    {{ label: "equity (USDT)", data: data.equity_curve.map(r => +r[1]), borderColor: "#1f6feb",
      pointRadius: 0, borderWidth: 1.5, yAxisID: "y" }},
    {{ label: "drawdown (USDT)", data: data.equity_curve.map(r => -r[2]), borderColor: "#d1242f",
      backgroundColor: "rgba(209,36,47,0.15)", fill: true, pointRadius: 0, borderWidth: 1, yAxisID: "dd" }},
  ] }},
  options: {{ animation: false, maintainAspectRatio: false, scales: {{
    y: {{ position: "left" }}, dd: {{ position: "right", grid: {{ drawOnChartArea: false }} }} }} }},
}});
new Chart(document.getElementById("daily-chart"), {{
  type: "bar",
  data: {{ labels: data.days.map(d => d.date), datasets: [{{ label: "daily PnL (USDT)",
    data: data.days.map(d => +d.pnl),
    backgroundColor: data.days.map(d => +d.pnl >= 0 ? "#2da44e" : "#d1242f") }}] }},
  options: {{ animation: false, maintainAspectRatio: false }},
}});
</script>
</body></html>
"""


def report_html(data: dict, *, title: str) -> str:
    """One page with everything inline: the charts library, the summary, the tables."""
    totals = "".join(
        f"<span>{html.escape(label)}: <b>{html.escape(str(data[key]))}</b></span>"
        for label, key in (
            ("liquidations", "liquidations"),
            ("trades", "trades"),
            ("win rate %", "win_rate_pct"),
            ("start equity", "start_equity"),
            ("end equity", "end_equity"),
            ("net PnL", "net_pnl"),
            ("fees", "fees"),
            ("max drawdown", "max_drawdown"),
        )
    )
    days = _table(
        ["date", "baseline", "end equity", "PnL", "daily limit", "fired at"],
        [
            [d["date"], d["baseline"], d["end_equity"], d["pnl"], d["outcome"], d["fired_at"]]
            for d in data["days"]
        ],
    )
    coins = _table(
        ["coin", "trades", "wins", "win rate %", "PnL", "fees", "net"],
        [
            [s, r["trades"], r["wins"], r["win_rate_pct"], r["pnl"], r["fees"], r["net"]]
            for s, r in data["coins"].items()
        ],
    )
    skips = _table(["reason", "count"], [[k, v] for k, v in data["skip_reasons"].items()])
    trades = _table(
        ["coin", "side", "qty", "entry", "entry price", "exit", "exit price", "reason", "PnL", "fees", "net",
         "liquidation"],
        [
            [
                t["symbol"], t["side"], t["qty"], t["entry_time"], t["entry_price"], t["exit_time"],
                t["exit_price"], t["reason"], t["pnl"], t["fees"], t["net"],
                f"{t['liquidation'].get('liquidated_side')} {t['liquidation'].get('notional')} USDT "
                f"@ {t['liquidation'].get('price')}",
            ]
            for t in data["trade_list"]
        ],
    )  # fmt: skip
    # "</" inside a script element would end it early.
    embedded = json.dumps(data, sort_keys=True).replace("</", "<\\/")
    return PAGE.format(
        title=html.escape(title),
        totals=totals,
        days=days,
        coins=coins,
        skips=skips,
        trades=trades,
        chartjs=CHART_JS.read_text(),
        summary=embedded,
    )


def report_write(data: dict, out: Path, *, title: str) -> Path:
    """Write ``out`` (HTML) and the JSON summary beside it (same name, ``.json``); returns the JSON path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_html(data, title=title))
    summary_path = out.with_suffix(".json")
    summary_path.write_text(summary_json(data))
    return summary_path
