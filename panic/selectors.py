"""Read-side queries for panic: the lock, from the one status snapshot; the last receipt,
from the journal."""

from __future__ import annotations

from core.status import status_snapshot
from trading.models import Decision


def panic_status() -> dict:
    """The panic lock, whether a flatten is running, and whether trading is allowed at all."""
    status = status_snapshot()
    state = status.switches
    return {
        "panic_locked": state.panic_locked,
        "panic_since": state.panic_since.isoformat() if state.panic_since else None,
        "panic_reason": state.panic_reason,
        "running_run_key": status.panic_running,
        "may_trade": status.may_trade,
    }


def panic_receipt_last() -> dict | None:
    """The last panic run's receipt, from its journal row (None: no panic yet): when, who,
    the outcome, what it cancelled, closed (side, qty, avg price, realised PnL) and left, the
    rounds and the timings of its phases in ms."""
    row = (
        Decision.objects.filter(
            strategy=Decision.Strategy.PANIC,
            action="panic",
            outcome__in=(Decision.Outcome.TAKEN, Decision.Outcome.FAILED),
        )
        .order_by("-id")
        .first()
    )
    if row is None:
        return None
    details = row.details if isinstance(row.details, dict) else {}
    return {
        "at": row.created_at,
        "by": details.get("by", ""),
        "reason": details.get("requested_reason") or details.get("reason", ""),
        "run_key": details.get("run_key", ""),
        "status": details.get("status") or row.reason_code,  # "flat", "not_flat", or "error"
        "flat": row.outcome == Decision.Outcome.TAKEN,
        "verified": bool(details.get("verified")),
        "rounds": details.get("rounds", 0),
        "cancelled_orders": details.get("cancelled_orders", 0),
        "closed": list(details.get("closed") or []),
        "remaining_positions": list(details.get("remaining_positions") or []),
        "remaining_orders": details.get("remaining_orders", 0),
        "errors": list(details.get("errors") or []) or ([details["error"]] if details.get("error") else []),
        # The receipt's detail (rows journaled before it existed have none).
        "closes": list(details.get("closes") or []),
        "rate_limited": details.get("rate_limited", 0),
        "timings_ms": dict(details.get("timings_ms") or {}),
    }
