"""What the Telegram bridge says: /status from the one status snapshot, /pnl, and the answers
to /kill, /resume and /close.

`status_text()` reads the database and Redis (blocking; handlers run it off the
event loop).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from core.models import TradingState
from core.status import StatusSnapshot, status_snapshot
from core.text import decimal_or_none, money_text, pct_text, plain_text
from panic.services import PanicResult, panic_text
from risk.selectors import account_summary, realised_pnl
from trading.flatten import FlattenReport
from trading.models import Decision

logger = logging.getLogger(__name__)

JOURNAL_LINES = 5

HELP_TEXT = "\n".join(
    [
        "Commands:",
        "/status - mode, trading switches, equity, IM %, today's PnL, positions, process health, engine, "
        "last decisions",
        "/positions - each open position with its owner, uPnL, TP/SL and liquidation price",
        "/pnl - realised PnL per strategy (WL, PM, manual), net of fees: today and the last 7 days",
        "/kill - halt every strategy (no new entries; open positions are not closed)",
        "/resume - lift the halt set by /kill",
        "/close - panic: lock trading, cancel every order (TP/SL too), close every position "
        "reduce-only and check the account is flat; undo the lock from the dashboard, "
        "POST /panic/reset or `manage.py panic --reset`",
        "/help - this list",
    ]
)


def _when(value: datetime | None) -> str:
    return "?" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def trading_blockers(state: TradingState, *, now: datetime) -> list[str]:
    """Why trading is not allowed, one line per switch that is on (empty: trading is allowed)."""
    blockers = []
    if state.panic_locked:
        reason = f" ({state.panic_reason})" if state.panic_reason else ""
        blockers.append(f"panic lock since {_when(state.panic_since)}{reason}")
    if state.halted:
        blockers.append(f"halted by {state.halted_by or 'unknown'} since {_when(state.halted_since)}")
    if state.is_disabled(now):
        reason = f" ({state.disabled_reason})" if state.disabled_reason else ""
        blockers.append(f"disabled until {_when(state.disabled_until)}{reason}")
    return blockers


def _trading_lines(state: TradingState, *, now: datetime) -> list[str]:
    blockers = trading_blockers(state, now=now)
    if not blockers:
        return ["Trading: allowed"]
    return ["Trading: NOT allowed"] + [f"  - {blocker}" for blocker in blockers]


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _health_lines(status: StatusSnapshot) -> list[str]:
    if status.health is None:
        return [f"Processes: unknown: {status.redis_error}"]
    lines = ["Processes:"]
    for process in status.health:
        if not process.required:
            continue
        if process.alive:
            state = "up"
        elif process.age_s is None:
            state = "DOWN (never started)"
        else:
            state = f"DOWN (last beat {_age(process.age_s)} ago)"
        lines.append(f"  {process.name}: {state}")
    return lines


def _percent(value) -> str:
    if value in (None, ""):
        return "n/a"
    try:
        return f"{Decimal(str(value)).quantize(Decimal('0.01'))}%"
    except (InvalidOperation, ValueError):
        return "n/a"


def _engine_line(status: StatusSnapshot) -> str:
    if status.redis_error:
        return f"Engine: unknown: {status.redis_error}"
    stats = status.engine
    if stats is None:
        return "Engine: no stats yet (not started?)"
    skips = stats.get("skips") or {}
    skipped = sum(skips.values()) if isinstance(skips, dict) else skips
    readiness = "ready" if stats.get("ready") else "NOT ready"
    coins, entries = stats.get("coins", "?"), stats.get("entries_sent", "?")
    return (
        f"Engine: {readiness}, {coins} coins, {entries} entries sent, {skipped} skips, "
        f"{stats.get('positions', '?')} positions, IM {_percent(stats.get('im_pct'))}"
    )


def _account_lines(status: StatusSnapshot) -> list[str]:
    """Equity and IM %, today's PnL against the target and the stop, and each position with
    its owner: the account as `/api/account` reads it, with its age when it is stale."""
    summary = account_summary(status)
    if not summary["available"]:
        return [f"Account: unknown: {summary['error']}"]
    when = summary["at"].strftime("%H:%M:%S UTC")
    stale = f", STALE ({status.account_age_s:.0f} s old)" if summary["stale"] else ""
    im = pct_text(summary["im_pct"]) or "n/a"
    levels = f"warn {plain_text(summary['im_warn_pct'])}, reduce {plain_text(summary['im_reduce_pct'])}"
    lines = [
        f"Equity: {money_text(summary['equity'])} USDT, IM {im} % ({levels}), at {when}{stale}",
        _day_line(summary["daily"]),
    ]
    positions = status.account.get("positions") or []
    lines.append(f"Positions ({len(positions)}):" if positions else "Positions: none")
    for row in positions:
        upnl = money_text(row.get("unrealised_pnl"), signed=True)
        lines.append(f"  {row['symbol']} {row['side']} {row['size']}, uPnL {upnl} ({row.get('owner', '?')})")
    return lines


def _exchange_line(status: StatusSnapshot) -> str:
    exchange = status.exchange
    if exchange is None:
        return f"Exchange: unknown: {status.redis_error}"
    if exchange.state == "ok":
        return "Exchange: answers"
    return f"⚠️ {exchange.problem}" if exchange.failing else exchange.problem


def _day_line(daily: dict) -> str:
    limits = f"target +{plain_text(daily['target_pct'])} %, stop -{plain_text(daily['stop_pct'])} %"
    if daily["outcome"] is None:
        return f"Today: no record yet ({limits})"
    pnl_usdt, pnl_pct = money_text(daily["pnl_usdt"], signed=True), pct_text(daily["pnl_pct"], signed=True)
    return f"Today: {pnl_usdt} USDT ({pnl_pct} %), {limits}, {daily['outcome']}"


def _decision_line(decision: Decision) -> str:
    parts = [
        decision.created_at.astimezone(UTC).strftime("%m-%d %H:%M:%S"),
        decision.strategy,
        decision.symbol or "-",
        decision.action,
        decision.outcome,
    ]
    if decision.reason_code:
        parts.append(decision.reason_code)
    by = (decision.details or {}).get("by") if isinstance(decision.details, dict) else None
    if by:
        parts.append(f"by {by}")
    return "  " + " ".join(parts)


def _journal_lines() -> list[str]:
    decisions = list(Decision.objects.all()[:JOURNAL_LINES])
    if not decisions:
        return ["Last decisions: none yet"]
    return [f"Last {len(decisions)} decisions (UTC):"] + [_decision_line(d) for d in decisions]


def status_text(*, now: datetime | None = None) -> str:
    """The /status reply: mode, trading switches, the account (equity, IM %, today's PnL,
    positions), process health, engine stats, last decisions.

    Blocking (database and Redis). Redis being down degrades the health and engine
    lines instead of failing the whole reply: /status matters most when things break.
    """
    status = status_snapshot(now=now)
    lines = [f"Mode: {status.exchange_mode}", _exchange_line(status)]
    lines += _trading_lines(status.switches, now=status.at)
    lines += _account_lines(status)
    lines += _health_lines(status)
    lines.append(_engine_line(status))
    if status.engine and not status.engine_current:
        lines.append(f"  NOT CURRENT: {status.engine_problem}")
    lines += _journal_lines()
    return "\n".join(lines)


def _price(raw) -> str:
    """A price as the exchange sent it, trailing zeros dropped (2 decimals would hide a 0.0123 coin)."""
    return plain_text(decimal_or_none(raw)) or "none"


def positions_text(*, now: datetime | None = None) -> str:
    """The /positions reply: each open position with its owner, entry and mark, uPnL, TP/SL
    and liquidation price, from the worker's account snapshot (with its age when stale)."""
    status = status_snapshot(now=now)
    if not status.account:
        return f"Positions: unknown: {status.account_problem}"
    read = f"read {status.account_age_s:.0f} s ago" + (", STALE" if status.account_stale else "")
    positions = status.account.get("positions") or []
    lines = [f"Positions ({len(positions)}), {read}:" if positions else f"No positions ({read})."]
    for row in positions:
        owner, upnl = row.get("owner", "?"), money_text(row.get("unrealised_pnl"), signed=True)
        lines.append(
            f"{row['symbol']} {row['side']} {row['size']} @ {_price(row.get('entry_price'))} ({owner})"
        )
        lines.append(
            f"  mark {_price(row.get('mark_price'))}, uPnL {upnl} USDT, TP {_price(row.get('take_profit'))}, "
            f"SL {_price(row.get('stop_loss'))}, liq {_price(row.get('liq_price'))}"
        )
    return "\n".join(lines)


def halt_reply(state: TradingState, *, now: datetime | None = None) -> str:
    """The /kill answer, from the state `trading_halt` returned."""
    now = now or timezone.now()
    lines = [
        f"Trading halted by {state.halted_by}.",
        "Strategies make no new entries; open positions are not closed.",
        "/resume lifts the halt.",
    ]
    others = [b for b in trading_blockers(state, now=now) if not b.startswith("halted by")]
    if others:
        lines.append("Also on: " + "; ".join(others))
    return "\n".join(lines)


def resume_reply(state: TradingState, *, by: str, now: datetime | None = None) -> str:
    """The /resume answer: the halt is lifted, but other switches may still stop trading."""
    now = now or timezone.now()
    blockers = trading_blockers(state, now=now)
    if not blockers:
        return f"Halt lifted by {by}. Trading is allowed."
    return f"Halt lifted by {by}, but trading is still NOT allowed:\n" + "\n".join(
        f"  - {b}" for b in blockers
    )


CLOSE_STARTED_TEXT = "Panic: locking trading, cancelling every order and closing every position..."


def close_reply(result: PanicResult) -> str:
    """The /close answer when the panic service ran."""
    return panic_text(result)


def close_fallback_reply(report: FlattenReport, panic_error: BaseException) -> str:
    """The /close answer when the panic service failed and direct reduce-only closes ran instead."""
    lines = [
        f"The panic service FAILED ({type(panic_error).__name__}); closed positions directly instead "
        "(reduce-only). Trading may NOT be locked: send /kill to halt the strategies.",
    ]
    if report.flat:
        lines.append("Account FLAT, verified on the exchange.")
    else:
        lines.append(
            f"Account NOT FLAT: positions {', '.join(report.remaining_positions) or 'none'}; "
            f"open orders {report.remaining_orders}. Check the exchange NOW."
        )
    lines.append(
        f"Closed: {', '.join(sorted(set(report.closes_sent))) or 'nothing'}; "
        f"cancelled orders: {report.cancelled_orders}."
    )
    return "\n".join(lines)


def close_failed_reply(panic_error: BaseException, close_error: BaseException) -> str:
    return (
        f"/close FAILED: the panic service ({type(panic_error).__name__}) and the direct closes "
        f"({type(close_error).__name__}) both failed. Positions may still be open: check the exchange NOW."
    )


# -- /pnl ---------------------------------------------------------------------------------


def _pnl_lines(title: str, rows: list[dict]) -> list[str]:
    lines = [title]
    for row in rows:
        closes = row["closes"]
        detail = (
            f" (fees {money_text(row['fees'])}, {closes} close{'' if closes == 1 else 's'})" if closes else ""
        )
        lines.append(f"  {row['strategy']}: {money_text(row['pnl'], signed=True)}{detail}")
    return lines


def pnl_text(*, now: datetime | None = None) -> str:
    """/pnl: realised PnL per strategy, today and the last 7 days (the closed-PnL rows the
    worker syncs from Bybit every 30 s; no exchange call here)."""
    pnl = realised_pnl(now=now or timezone.now(), days=7)
    return "\n".join(
        [
            "Realised PnL in USDT (closed positions, net of fees):",
            *_pnl_lines(f"Today ({pnl['date'].isoformat()} UTC):", pnl["today"]),
            *_pnl_lines("Last 7 days:", pnl["last_7_days"]),
        ]
    )
