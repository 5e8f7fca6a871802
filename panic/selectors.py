"""Read-side queries for panic: the lock as the database and Redis show it."""

from __future__ import annotations

from django.utils import timezone

from panic.services import panic_running
from trading.models import TradingState


def panic_status() -> dict:
    """The panic lock, whether a flatten is running, and whether trading is allowed at all."""
    # A read must not create the row: before anyone touched the switches they are all off.
    state = TradingState.objects.filter(pk=1).first() or TradingState()
    return {
        "panic_locked": state.panic_locked,
        "panic_since": state.panic_since.isoformat() if state.panic_since else None,
        "panic_reason": state.panic_reason,
        "running_run_key": panic_running(),
        "may_trade": state.may_trade(timezone.now()),
    }
