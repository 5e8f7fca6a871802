"""What the live dashboard shows, read from the database and Redis (never the exchange).

One selector for the first paint (``dashboard_initial``, the view renders it) and the
pushes (``dashboard_snapshot``, the websocket consumer sends it every 2 s), so the
page and its live updates always agree. Plain JSON-ready dicts: decimals are strings,
already rounded for people where a row says ``*_text``; times are epoch ms (UTC) plus,
where the page prints them, UTC text.

Sources:
- the one status snapshot (``core.status``): the switches, the engine's figures, the
  worker's account snapshot (equity, IM %, positions, open orders) with its age, so a
  stopped worker shows as a stale snapshot, and process health;
- daily PnL: today's ``DailyPnL`` row of the account trading now against ``RiskSettings``'s
  target and stop;
- realised PnL per strategy: the ``ClosedPnl`` rows the worker syncs from Bybit;
- the engine's recent liquidations and the equity samples in Redis, its decisions in the journal;
- the last alerts (``core.alerts``' capped Redis list).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from core import keys
from core.alerts import recent_alerts
from core.models import TradingState
from core.redis_client import redis_client
from core.status import ACCOUNT_STALE_S, StatusSnapshot, json_or_none, snapshot_age_s, status_snapshot
from core.text import decimal_or_none, money_text, pct_text, plain_text, utc_text
from panic.receipt import close_text, timings_text
from panic.selectors import panic_receipt_last
from risk.models import DailyPnL, RiskSettings
from risk.rules import day_start, im_action, limit_equities, utc_date
from risk.selectors import daily_history_rows, daily_row_today, realised_pnl
from trading.models import Coin, Decision

logger = logging.getLogger(__name__)

RECENT_DECISIONS = 30
DAILY_HISTORY_DAYS = 30


def _ms(moment: datetime | None) -> int | None:
    # round, not int: the engine's rows are stored from whole ms, and a float product
    # like 1735689600123.9999 must read back as the same ms the push carried.
    return None if moment is None else round(moment.timestamp() * 1000)


def _time_text_ms(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


# -- Redis --------------------------------------------------------------------------------


@dataclass
class RedisReads:
    """What only the dashboard reads from Redis, beside the status snapshot (None: missing
    or Redis down)."""

    latest_sample: str | None = None
    liquidations: list[str] | None = None
    equity_samples: list[str] | None = None
    error: str = ""


def redis_reads(*, full: bool) -> RedisReads:
    """``full`` adds what only the first paint needs (the liquidation list, today's samples)."""
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            pipe.lindex(keys.EQUITY_SAMPLES, -1)
            if full:
                pipe.lrange(keys.ENGINE_LIQUIDATIONS, 0, -1)
                pipe.lrange(keys.EQUITY_SAMPLES, 0, -1)
            values = pipe.execute()
    except Exception as error:  # Redis down: the page says so instead of failing
        logger.warning("dashboard_redis_unavailable error=%s", type(error).__name__)
        return RedisReads(error=f"redis unavailable ({type(error).__name__})")
    reads = RedisReads(latest_sample=values[0])
    if full:
        reads.liquidations, reads.equity_samples = values[1], values[2]
    return reads


# -- the parts ----------------------------------------------------------------------------


def account_view(*, snapshot: dict | None, error: dict | None, now: datetime) -> dict:
    """The worker's account snapshot with its age, and display text for the money."""
    if snapshot is None:
        return {
            "available": False,
            "error": (error or {}).get("error", ""),
            "positions": [],
            "open_orders": [],
        }
    age_s = snapshot_age_s(snapshot, now=now)
    positions = [
        {
            **row,
            "unrealised_pnl_text": money_text(row.get("unrealised_pnl"), signed=True),
            "position_value_text": money_text(row.get("position_value")),
        }
        for row in snapshot.get("positions", [])
    ]
    orders = [
        {
            **row,
            "created_text": _time_text_ms(row.get("created_ms")),
            # Bybit's position TP/SL (tpslMode Full) carry qty 0: they close whatever is open.
            "qty_text": "position"
            if row.get("stop_order_type") and decimal_or_none(row.get("qty")) == 0
            else (row.get("qty") or ""),
        }
        for row in snapshot.get("open_orders", [])
    ]
    return {
        "available": True,
        "at_ms": snapshot["at_ms"],
        "at_text": _time_text_ms(snapshot["at_ms"]),
        "age_s": round(age_s, 1),
        "stale": age_s > ACCOUNT_STALE_S,
        "error": (error or {}).get("error", ""),
        "equity": snapshot.get("equity"),
        "equity_text": money_text(snapshot.get("equity")),
        "wallet_balance_text": money_text(snapshot.get("wallet_balance")),
        "available_balance_text": money_text(snapshot.get("available_balance")),
        "initial_margin_text": money_text(snapshot.get("initial_margin")),
        "unrealised_pnl_text": money_text(snapshot.get("unrealised_pnl"), signed=True),
        "im_pct": snapshot.get("im_pct"),
        "positions": positions,
        "open_orders": orders,
    }


def daily_view(*, risk: RiskSettings, day: DailyPnL | None, today) -> dict:
    """Today's PnL against the target and the stop, in % of the baseline and in equity."""
    view = {
        "date": today.isoformat(),
        "target_pct": plain_text(risk.daily_target_pct),
        "stop_pct": plain_text(risk.daily_stop_pct),
        "available": day is not None,
    }
    if day is None:
        return view
    baseline = day.baseline_equity
    net = day.net_transfers
    target_equity, stop_equity = limit_equities(
        baseline=baseline, target_pct=risk.daily_target_pct, stop_pct=risk.daily_stop_pct, net_transfers=net
    )
    return {
        **view,
        "account": day.account,
        "baseline": str(baseline),
        "baseline_text": money_text(baseline),
        # Deposits in minus withdrawals out since the baseline: not PnL, they move the lines.
        "net_transfers": str(net),
        "baseline_adjusted": str(baseline + net),
        "moved_text": f" (net transfers {money_text(net, signed=True)} USDT, not PnL)" if net else "",
        "equity_text": money_text(day.last_equity),
        "high_text": money_text(day.high_equity),
        "low_text": money_text(day.low_equity),
        "pnl_usdt_text": money_text(day.pnl_usdt, signed=True),
        "pnl_pct": str(day.pnl_pct),
        "pnl_pct_text": pct_text(day.pnl_pct, signed=True),
        "target_equity": str(target_equity),
        "target_equity_text": money_text(target_equity),
        "stop_equity": str(stop_equity),
        "stop_equity_text": money_text(stop_equity),
        # How far each limit still is, in percentage points of the baseline.
        "to_target_pct_text": pct_text(risk.daily_target_pct - day.pnl_pct),
        "to_stop_pct_text": pct_text(day.pnl_pct + risk.daily_stop_pct),
        "outcome": day.outcome,
        "updated_text": utc_text(day.updated_at, "%H:%M:%S"),
    }


def im_view(*, risk: RiskSettings, im_pct) -> dict:
    number = decimal_or_none(im_pct)
    view = {
        "pct": None if number is None else str(number),
        "pct_text": pct_text(number),
        "warn_pct": plain_text(risk.im_warn_pct),
        "reduce_pct": plain_text(risk.im_reduce_pct),
        "level": "unknown",
    }
    if number is not None:
        level = im_action(im_pct=number, warn_pct=risk.im_warn_pct, reduce_pct=risk.im_reduce_pct)
        view["level"] = level.value
    return view


def lock_view(*, state: TradingState, now: datetime) -> dict:
    disabled = state.is_disabled(now)
    return {
        "may_trade": state.may_trade(now),
        "panic_locked": state.panic_locked,
        "panic_since_text": utc_text(state.panic_since),
        "panic_reason": state.panic_reason,
        "halted": state.halted,
        "halted_by": state.halted_by,
        "halted_since_text": utc_text(state.halted_since),
        "disabled": disabled,
        "disabled_until_text": utc_text(state.disabled_until, "%Y-%m-%d %H:%M") if disabled else "",
        "disabled_reason": state.disabled_reason if disabled else "",
    }


def health_view(status: StatusSnapshot) -> dict:
    if status.health is None:  # Redis down
        return {"status": "down", "error": status.redis_error, "processes": []}
    return {
        "status": "ok" if status.healthy else "degraded",
        "error": "",
        "processes": [
            {
                "name": p.name,
                "required": p.required,
                "alive": p.alive,
                "last_heartbeat_text": utc_text(p.last_heartbeat) or "never",
                "age_text": "" if p.age_s is None else f"{p.age_s:.1f} s",
                "pid": p.pid or "",
                "host": p.host or "",
            }
            for p in status.health
        ],
    }


def engine_view(stats: dict | None) -> dict:
    """The engine's figures (written with each journal flush); skip counts, largest first."""
    if not stats:
        return {"available": False, "skips": []}
    skips = sorted((stats.get("skips") or {}).items(), key=lambda item: (-item[1], item[0]))
    return {
        "available": True,
        "ready": bool(stats.get("ready")),
        "coins": stats.get("coins"),
        "entries_sent": stats.get("entries_sent", 0),
        "orders_in_flight": stats.get("orders_in_flight", 0),
        "skips": [{"reason": reason, "count": count} for reason, count in skips],
        "skips_total": sum(count for _, count in skips),
    }


def panic_receipt_view(receipt: dict | None) -> dict | None:
    """The last panic's receipt as text: a summary, the errors, each close and the timings
    (None: no panic yet)."""
    if receipt is None:
        return None
    outcome = "FLAT, verified on the exchange" if receipt["flat"] else f"NOT FLAT ({receipt['status']})"
    left = ", ".join(receipt["remaining_positions"]) or "no position"
    if receipt["remaining_orders"]:
        left += f", {receipt['remaining_orders']} orders"
    parts = [
        f"{utc_text(receipt['at'])} UTC by {receipt['by']}"
        + (f" ({receipt['reason']})" if receipt["reason"] else ""),
        outcome,
        f"{receipt['rounds']} round{'' if receipt['rounds'] == 1 else 's'}",
        f"{receipt['cancelled_orders']} orders cancelled",
        f"closed {', '.join(receipt['closed']) or 'nothing'}",
        f"left {left}",
    ]
    return {
        "flat": receipt["flat"],
        "summary": " · ".join(parts),
        "errors": "; ".join(receipt["errors"]),
        # The closes (one text each, largest exposure first, as sent) and the phase timings.
        "closes": [close_text(close) for close in receipt.get("closes") or []],
        "timings": timings_text(receipt.get("timings_ms") or {}),
    }


# -- latency and the engine's run ------------------------------------------------

LATENCY_LABELS = (
    ("event_age_ms", "event age", "ms"),
    ("decide_us", "decision", "µs"),
    ("ack_ms", "ack", "ms"),
)


def _figure_text(value, unit: str) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:g} {unit}"


def latency_text(figures: dict) -> str:
    """``event age 35 ms · decision 41.2 µs · ack 12.3 ms`` from a row's figures ("" when none)."""
    parts = [
        f"{label} {_figure_text(figures[name], unit)}"
        for name, label, unit in LATENCY_LABELS
        if figures.get(name) is not None
    ]
    return " · ".join(parts)


def decision_latency(decision: Decision) -> dict:
    """An engine row's latency figures (entries carry all three, skips the event age)."""
    details = decision.details or {}
    figures = {name: details.get(name) for name, _, _ in LATENCY_LABELS}
    return {**figures, "latency_text": latency_text(figures)}


def engine_run_view(status: StatusSnapshot) -> dict:
    """Which run the engine's figures are from, whether they are current, and the latency
    p50/p99 of the last hour. Figures of another run stay visible but are marked not current."""
    stats = status.engine or {}
    started_ms = stats.get("started_ms")
    latency = stats.get("latency") or {}
    return {
        "current": status.engine_current,
        "problem": status.engine_problem if stats else "",
        "mode": stats.get("mode") or "",
        "phase": stats.get("phase") or "",
        "run_id": stats.get("run_id") or "",
        "started_text": utc_text(datetime.fromtimestamp(started_ms / 1000, tz=UTC)) if started_ms else "",
        "latency": [
            {
                "figure": label,
                "count": (latency.get(name) or {}).get("count", 0),
                "p50_text": _figure_text((latency.get(name) or {}).get("p50"), unit),
                "p99_text": _figure_text((latency.get(name) or {}).get("p99"), unit),
            }
            for name, label, unit in LATENCY_LABELS
        ],
    }


def decision_row(decision: Decision) -> dict:
    return {
        "id": decision.id,
        "at_ms": _ms(decision.created_at),
        "time_text": utc_text(decision.created_at, "%H:%M:%S"),
        "strategy": decision.strategy,
        "symbol": decision.symbol,
        "action": decision.action,
        "outcome": decision.outcome,
        "reason_code": decision.reason_code,
        "order_link_id": decision.order_link_id,
        **decision_latency(decision),
    }


def decisions_recent(*, limit: int = RECENT_DECISIONS) -> list[dict]:
    """The journal's newest rows, newest first."""
    return [decision_row(d) for d in Decision.objects.order_by("-id")[:limit]]


def decisions_after(*, after_id: int, limit: int = RECENT_DECISIONS) -> list[dict]:
    """Rows journaled since ``after_id`` by everyone but the engine (its own arrive pushed
    by the engine the moment it writes them), newest first."""
    rows = (
        Decision.objects.filter(id__gt=after_id)
        .exclude(strategy=Decision.Strategy.LIQUIDATION)
        .order_by("-id")[:limit]
    )
    return [decision_row(d) for d in rows]


def _sample(raw: str) -> list | None:
    """``"<ms> <equity>"`` -> ``[ms, "equity"]``."""
    try:
        ms, equity = raw.split(" ", 1)
        return [int(ms), equity]
    except (AttributeError, ValueError):
        return None


def equity_samples_today(raw: list[str] | None, *, now: datetime) -> list[list]:
    since_ms = _ms(day_start(now))
    samples = (_sample(item) for item in raw or [])
    return [s for s in samples if s is not None and s[0] >= since_ms]


def daily_history(*, days: int = DAILY_HISTORY_DAYS) -> list[dict]:
    """The last ``days`` days of this mode's DailyPnL rows (one a day), oldest first (the chart's order)."""
    rows = daily_history_rows(mode=settings.EXCHANGE_MODE, days=days)
    return [
        {
            "date": row.date.isoformat(),
            "pnl_pct": str(row.pnl_pct),
            "pnl_usdt": str(row.pnl_usdt),
            "last_equity": str(row.last_equity),
            "outcome": row.outcome,
        }
        for row in reversed(rows)
    ]


def liquidations_recent(raw: list[str] | None) -> list[dict]:
    """The engine's list is oldest first; the page shows newest first."""
    rows = (json_or_none(item) for item in reversed(raw or []))
    return [
        {
            **row,
            "time_text": _time_text_ms(row.get("at_ms")),
            "notional_text": money_text(row.get("notional")),
        }
        for row in rows
        if isinstance(row, dict)
    ]


# -- realised PnL per strategy (risk.closed_pnl; the page's part is static/controlpanel/pnl.js) --


def realised_pnl_view(*, now: datetime, days: int = DAILY_HISTORY_DAYS) -> dict:
    """Realised PnL (net of fees) per strategy: today and the last 30 days as text for the
    card, and per day for the chart (strings, oldest first, one series per strategy)."""
    pnl = realised_pnl(now=now, days=days)
    month = {row["strategy"]: row for row in pnl["last_30_days"]}
    rows = [
        {
            "strategy": row["strategy"],
            "today_text": money_text(row["pnl"], signed=True),
            "today_closes": row["closes"],
            "month_text": money_text(month[row["strategy"]]["pnl"], signed=True),
            "month_fees_text": money_text(month[row["strategy"]]["fees"]),
            "month_closes": month[row["strategy"]]["closes"],
        }
        for row in pnl["today"]
    ]
    dates = sorted({row["date"] for row in pnl["daily"]})
    series = {strategy: [] for strategy in pnl["strategies"]}
    for row in pnl["daily"]:  # oldest first, every strategy every day
        series[row["strategy"]].append(str(row["pnl"]))
    return {
        "rows": rows,
        "dates": [day.isoformat() for day in dates],
        "series": series,
    }


# -- the last alerts (core.alerts) ----------------------------------------------------------

RECENT_ALERTS_SHOWN = 20


def alerts_recent_view() -> list[dict]:
    """The last alerts, newest first, as ``core.alerts`` listed them: kind, UTC time, text and
    what became of each (``delivered``, ``folded`` into a digest, ``muted``, or the ``digest``
    itself). Empty when Redis can't be read (the page's Redis warning says why)."""
    try:
        rows = recent_alerts(limit=RECENT_ALERTS_SHOWN)
    except Exception as error:
        logger.warning("dashboard_alerts_unavailable error=%s", type(error).__name__)
        return []
    view = []
    for row in rows:
        try:
            at = datetime.fromisoformat(row["at"])
        except (KeyError, TypeError, ValueError):
            continue
        view.append(
            {
                "at_ms": _ms(at),
                "time_text": at.strftime("%H:%M:%S"),
                "kind": str(row.get("kind", "")),
                "status": str(row.get("status", "")),
                "text": str(row.get("text", "")),
            }
        )
    return view


# -- the two entry points -----------------------------------------------------------------


def dashboard_snapshot(*, now: datetime, reads: RedisReads | None = None) -> dict:
    """The live part, pushed every ``DASHBOARD_PUSH_INTERVAL_S``."""
    status = status_snapshot(now=now)
    reads = reads or redis_reads(full=False)
    risk = RiskSettings.load()
    today = utc_date(now)
    account = account_view(snapshot=status.account, error=status.account_error, now=now)
    return {
        "at_ms": _ms(now),
        "redis_error": status.redis_error or reads.error,
        "account": account,
        "daily": daily_view(
            risk=risk, day=daily_row_today(today=today, mode=status.exchange_mode), today=today
        ),
        "im": im_view(risk=risk, im_pct=account.get("im_pct")),
        "lock": lock_view(state=status.switches, now=now),
        "health": health_view(status),
        "exchange_problem": status.exchange.problem if status.exchange and status.exchange.failing else "",
        "engine": {**engine_view(status.engine), **engine_run_view(status)},
        "panic_receipt": panic_receipt_view(panic_receipt_last()),
        "equity_sample": _sample(reads.latest_sample) if reads.latest_sample else None,
        "realised_pnl": realised_pnl_view(now=now),
        "alerts": alerts_recent_view(),
    }


def dashboard_initial(*, now: datetime) -> dict:
    """The first paint (and a reconnect's refresh): the live part, plus the journal, the
    liquidations and the charts' history."""
    reads = redis_reads(full=True)
    data = dashboard_snapshot(now=now, reads=reads)
    decisions = decisions_recent()
    data.update(
        {
            "exchange_mode": settings.EXCHANGE_MODE,
            "liquidation_feed": settings.LIQUIDATION_FEED,
            "coins_enabled": Coin.objects.filter(enabled=True).count(),
            "coins_total": Coin.objects.count(),
            "decisions": decisions,
            "last_decision_id": max((d["id"] for d in decisions), default=0),
            "liquidations": liquidations_recent(reads.liquidations),
            "equity_samples": equity_samples_today(reads.equity_samples, now=now),
            "daily_history": daily_history(),
        }
    )
    return data
