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
from panic.fallback import FallbackResult
from panic.services import PanicResult, panic_text
from risk.selectors import account_summary, realised_pnl
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
        "/kill - halt every strategy (no new entries; open positions are not closed); asks first: "
        "confirm with its button or /kill confirm within 60 s",
        "/resume - lift the halt set by /kill",
        "/close - panic: lock trading, cancel every order (TP/SL too), close every position "
        "reduce-only and check the account is flat; undo the lock from the dashboard, "
        "POST /panic/reset or `manage.py panic --reset`; asks first (what it would close, "
        "with the notional): "
        "confirm with its button or /close confirm within 60 s",
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
    net = decimal_or_none(daily.get("net_transfers"))
    moved = f", net transfers {money_text(net, signed=True)} USDT not in it" if net else ""
    return f"Today: {pnl_usdt} USDT ({pnl_pct} %{moved}), {limits}, {daily['outcome']}"


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


_FALLBACK_LOCK_LINES = {
    "database": "Trading is LOCKED (panic lock). Reset: POST /panic/reset, the dashboard, "
    "or `manage.py panic --reset`.",
    "redis": "Trading is LOCKED, the lock held in Redis (the database was down); it goes into the database "
    "when the database is back.",
    "none": "Trading could NOT be locked ({error}): strategies may re-enter. "
    "Stop the engine and workers NOW.",
}


def close_fallback_reply(result: FallbackResult, panic_error: BaseException) -> str:
    """The /close answer when the panic service failed and the fallback closed directly."""
    lines = [
        f"The panic service FAILED ({type(panic_error).__name__}); closed positions directly instead "
        "(reduce-only, exact sizes).",
        _FALLBACK_LOCK_LINES[result.lock].format(error=result.lock_error),
    ]
    if result.closed:
        lines.append(f"Closes sent: {', '.join(result.closed)}; cancelled orders: {result.cancelled_orders}.")
    else:
        lines.append(f"Closes sent: none; cancelled orders: {result.cancelled_orders}.")
    if result.closed_without_position_idx:
        lines.append(
            "Sent again without positionIdx (the account's position mode did not match): "
            + ", ".join(result.closed_without_position_idx)
            + "."
        )
    if result.flat:
        lines.append("Account FLAT, verified on the exchange.")
    else:
        lines.append(
            f"Account NOT FLAT: positions {', '.join(result.remaining_positions) or 'none'}; "
            f"open orders {result.remaining_orders}. Check the exchange NOW."
        )
        if not result.verified:
            lines.append("The exchange could not be read back, so flatness is unknown.")
        if result.errors:
            lines.append("Errors: " + "; ".join(result.errors[:5]))
    if not result.journaled:
        lines.append(
            f"The journal could not be written ({result.journal_error}): "
            "the closes above WENT OUT all the same."
        )
    return "\n".join(lines)


def close_failed_reply(panic_error: BaseException, close_error: BaseException) -> str:
    return (
        f"/close FAILED: the panic service ({type(panic_error).__name__}) and the direct closes "
        f"({type(close_error).__name__}) both failed. Positions may still be open and trading may "
        "NOT be locked: check the exchange NOW."
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


# -- /close and /kill ask first (telegram_bridge.confirm) -----------------------------------

CLOSE_BUTTON = "Close everything"
KILL_BUTTON = "Halt trading"
CANCEL_BUTTON = "Cancel"


def _notional(row: dict) -> Decimal | None:
    """A position's notional in USDT: size x mark price (Bybit's positionValue when no mark)."""
    size, mark = decimal_or_none(row.get("size")), decimal_or_none(row.get("mark_price"))
    if size is not None and mark is not None:
        return abs(size) * mark
    return decimal_or_none(row.get("position_value"))


def close_ask_text(*, ttl_s: float, now: datetime | None = None) -> str:
    """What /close would do, from the worker's account snapshot, and how to confirm it."""
    lines = [
        "/close would lock trading, cancel every order (TP/SL too) and close every position "
        "reduce-only, at market."
    ]
    try:
        status = status_snapshot(now=now)
    except Exception as error:  # the database is down: the confirmation must still be possible
        logger.warning("close_ask_status_failed error=%s", type(error).__name__)
        status = None
    if status is None or not status.account:
        problem = status.account_problem if status else "the status could not be read"
        lines.append(f"Positions: unknown ({problem}). /close closes whatever the exchange holds.")
    else:
        read = f"read {status.account_age_s:.0f} s ago" + (", STALE" if status.account_stale else "")
        positions = status.account.get("positions") or []
        lines.append(f"Positions ({len(positions)}), {read}:" if positions else f"Positions: none ({read}).")
        total = Decimal("0")
        for row in positions:
            notional = _notional(row)
            total += notional or 0
            lines.append(
                f"  {row['symbol']} {row['side']} {row['size']}, notional {money_text(notional)} USDT"
            )
        orders = len(status.account.get("open_orders") or [])
        lines.append(f"Total notional: {money_text(total)} USDT; open orders: {orders}.")
    lines.append(f'Confirm within {ttl_s:.0f} s: press "{CLOSE_BUTTON}" or send /close confirm.')
    return "\n".join(lines)


def kill_ask_text(*, ttl_s: float, now: datetime | None = None) -> str:
    """What /kill would do, and how to confirm it."""
    lines = [
        "/kill would halt every strategy: no new entries; open positions stay open (/close closes them)."
    ]
    try:
        state = TradingState.current()
        if state.halted:
            lines.append(
                f"Already halted by {state.halted_by or 'unknown'} since {_when(state.halted_since)}."
            )
    except Exception as error:  # the database is down: say nothing about the switches
        logger.warning("kill_ask_state_failed error=%s", type(error).__name__)
    lines.append(f'Confirm within {ttl_s:.0f} s: press "{KILL_BUTTON}" or send /kill confirm.')
    return "\n".join(lines)


def confirm_refused_text(*, action: str, why: str, ttl_s: float) -> str:
    """Why a confirmation did nothing (`why` is one of telegram_bridge.confirm's answers)."""
    command = f"/{action}"
    reasons = {
        "unknown": f"No {command} is waiting for your confirmation in this chat. Send {command} first.",
        "not_yours": f"Only the user who sent this {command}, in the chat where it was sent, can confirm it.",
        "done": f"This {command} was already confirmed or cancelled.",
        "expired": f"This {command} expired (a confirmation must come within {ttl_s:.0f} s). "
        f"Send {command} again.",
        "replaced": f"A newer {command} is waiting for your confirmation; this one no longer counts.",
    }
    return f"Nothing done. {reasons.get(why, reasons['unknown'])}"


CONFIRM_USAGE_TEXT = "Send /{action} to see what it would do, then /{action} confirm within {ttl:.0f} s."
