"""Read-side queries for panic: the lock, from the one status snapshot."""

from __future__ import annotations

from core.status import status_snapshot


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
