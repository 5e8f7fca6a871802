"""What the trading side tells the alert hook (`core.alerts`): refused orders, refused keys,
and the liquidation engine's entries.

One wording per error (no times, no ids), so a refusal that repeats every pass is folded
by the rate limit instead of sent again. Nothing here raises into the caller.
"""

from __future__ import annotations

import logging

from core.alerts import alert_send
from trading.errors import AuthError, ExchangeUnreachable, GatewayError, OrderOutcomeUnknown, is_key_refusal

logger = logging.getLogger(__name__)

# Bybit answered, but with "try later" (server timeout, server busy): not a refusal of the order.
_NOT_REFUSALS = frozenset({10000, 10016})


def is_venue_refusal(error: BaseException) -> bool:
    """The exchange answered with a retCode that refused the request (not a network failure,
    not an unknown outcome, not our own pre-send refusal, not the keys)."""
    if isinstance(error, (ExchangeUnreachable, OrderOutcomeUnknown, AuthError)):
        return False
    code = getattr(error, "code", None)
    return (
        isinstance(error, GatewayError)
        and isinstance(code, int)
        and code >= 10000
        and code not in _NOT_REFUSALS
    )


def auth_error_text(code: int | None, message: str, *, mode: str | None = None) -> str:
    """What a refused key means and what to do, in plain words (the alert, the status line,
    /status, the start of `make run`). ``mode``: the exchange mode (default: this process's)."""
    from django.conf import settings

    mode = mode or settings.EXCHANGE_MODE
    venue, names = (
        ("the simulator", "SIM_API_KEY / SIM_API_SECRET")
        if mode == "sim"
        else ("Bybit", "BYBIT_API_KEY / BYBIT_API_SECRET")
    )
    message = message.rstrip(". ")
    if code is None:  # no answer behind it: the keys are missing, nothing was sent
        return f"API key missing ({message}): set {names} in .env for {mode} mode, then restart."
    detail = message if code < 1000 else f"retCode {code}: {message}"  # 401: an HTTP status
    return f"API key refused by {venue} ({detail}): fix {names} in .env for {mode} mode, then restart."


def order_refused_text(*, what: str, symbol: str, code: int | None, message: str) -> str:
    return f"Order refused by Bybit: {what} {symbol}: {message} (retCode {code})."


def gateway_error_alert(error: BaseException, *, order: str = "", symbol: str = "") -> None:
    """Alert on a refused key (`auth_error`) or, when `order` names what the order was for,
    a refused order (`order_refused`); anything else is not an alert here."""
    try:
        if isinstance(error, AuthError):
            alert_send(auth_error_text(error.code, error.message), kind="auth_error")
        elif order and is_venue_refusal(error):
            text = order_refused_text(what=order, symbol=symbol, code=error.code, message=error.message)
            alert_send(text, kind="order_refused")
    except Exception as failure:  # formatting a strange error must not break the caller
        logger.error("gateway_error_alert_failed error=%s", type(failure).__name__)


def engine_journal_alerts(rows) -> None:
    """Alerts for the engine's journal rows (`PendingJournal`), from its flush, off the loop:
    each entry taken, each entry the exchange refused, refused keys. Blocking."""
    for row in rows:
        if row.action not in ("open_long", "open_short") or row.outcome == "skipped":
            continue
        try:
            details = row.details
            side = "long" if row.action == "open_long" else "short"
            if row.outcome == "taken":
                text = (
                    f"WL entry {row.symbol} {side}: {details.get('qty')} @ {details.get('price')} "
                    f"(VWAP {details.get('vwap')}, TP {details.get('take_profit')}, "
                    f"SL {details.get('stop_loss')})."
                )
                alert_send(text, kind="entry")
                continue
            code, message = details.get("error_code"), details.get("error") or row.reason_code
            if is_key_refusal(code):
                alert_send(auth_error_text(code, message), kind="auth_error")
            elif isinstance(code, int) and code >= 10000 and code not in _NOT_REFUSALS:
                text = order_refused_text(
                    what=f"WL entry {side}", symbol=row.symbol, code=code, message=message
                )
                alert_send(text, kind="order_refused")
        except Exception as failure:
            logger.error("engine_alert_failed symbol=%s error=%s", row.symbol, type(failure).__name__)
