"""Panic's domain errors. They carry no HTTP status: `panic/api.py` maps them."""

from __future__ import annotations


class PanicError(Exception):
    """Base of the panic app's refusals."""


class PanicResetRefused(PanicError):
    """The lock stays on: the exchange does not show a flat account (or could not be read).

    `remaining_positions` are symbols with an open position, `remaining_orders` the
    number of open orders (TP/SL included); both empty when the refusal had another
    cause (`reason_code` says which: not_flat, exchange_unreadable, panic_running).
    """

    def __init__(
        self,
        message: str,
        *,
        reason_code: str,
        remaining_positions: list[str] | None = None,
        remaining_orders: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason_code = reason_code
        self.remaining_positions = list(remaining_positions or [])
        self.remaining_orders = remaining_orders
