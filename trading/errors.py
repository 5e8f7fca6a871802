"""Typed errors the gateway raises; nothing above the gateway sees pybit's exceptions.

``code`` is Bybit's ``retCode`` when the venue answered, the HTTP status for a
non-200 answer, and ``None`` for our own refusals and for network failures.
Messages carry Bybit's ``retMsg`` (or our own words) and never the request,
the API key or the signature: pybit's ``str()`` of its exceptions includes the
request, so the gateway never uses it.

Hierarchy::

    GatewayError
    |-- RetryableError           10000/10006/10016, HTTP 429/5xx
    |   `-- ExchangeUnreachable  timeout, connection failure, non-JSON answer
    |-- ClockSkewError           10002
    |-- AuthError                10003/10004/10005/10007/10010/33004, missing keys
    |-- IpBanned                 HTTP 403: stop every session for 10+ minutes
    |-- OrderRejected            the venue said no to an order; don't resend unchanged
    |   |-- ReduceOnlyRejected   110017
    |   |-- InsufficientBalance  110004/110007/110012
    |   |-- BelowMinNotional     110094
    |   |-- BadRequest           10001
    |   `-- DuplicateOrderLinkId 110072 (raised only when the existing order can't be matched)
    |-- OrderOutcomeUnknown      sent, no answer, and the lookup could not settle it
    |-- OrderRefused             our own pre-send refusal (reason code)
    |   `-- OrderTooSmall        below minOrderQty / minNotionalValue
    |-- UnknownInstrument        symbol not in instruments-info
    `-- MalformedAnswer          an answer or stream row without the shape we parse
"""

from __future__ import annotations


class GatewayError(Exception):
    """An exchange call failed. ``code``: Bybit retCode, HTTP status, or ``None``."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.message} (code {self.code})"


class RetryableError(GatewayError):
    """Try again later. ``retry_at_ms``: the venue's reset time (its clock), when it gave one."""

    def __init__(self, code: int | None, message: str, *, retry_at_ms: int | None = None) -> None:
        super().__init__(code, message)
        self.retry_at_ms = retry_at_ms

    def __reduce__(self):
        state = {"code": self.code, "message": self.message, "retry_at_ms": self.retry_at_ms}
        return (_rebuild, (type(self), state))


class ClockSkewError(GatewayError):
    """10002: our timestamp is outside the server's window (>= 1 s ahead, or behind by recv_window)."""


class AuthError(GatewayError):
    """Key invalid, signature wrong or permission missing: stop trading and alert."""


class IpBanned(GatewayError):
    """HTTP 403 from Bybit: the IP limit was breached (or the IP is geo-blocked). Stop for 10+ minutes."""


class OrderRejected(GatewayError):
    """The venue refused the order. Resending it unchanged would be refused again."""


class ReduceOnlyRejected(OrderRejected):
    """110017: a reduce-only order with nothing to reduce (flat, or the position is on the same side)."""


class InsufficientBalance(OrderRejected):
    """110004 / 110007 / 110012."""


class BelowMinNotional(OrderRejected):
    """110094: the venue's minNotionalValue check (ours should have caught it first)."""


class BadRequest(OrderRejected):
    """10001: a parameter is wrong: a bug or bad configuration, not a market condition."""


class DuplicateOrderLinkId(OrderRejected):
    """110072 and the order under that id is not the one we meant to place."""


class OrderOutcomeUnknown(GatewayError):
    """An order was sent, no answer came, and looking it up by ``order_link_id`` did not settle it.

    Reconcile later by ``order_link_id``; never resend under a new id.
    """

    def __init__(self, message: str, *, order_link_id: str) -> None:
        super().__init__(None, message)
        self.order_link_id = order_link_id

    def __reduce__(self):  # keep it picklable (Celery results) despite the keyword-only argument
        return (_rebuild, (type(self), {"message": self.message, "order_link_id": self.order_link_id}))


class OrderRefused(GatewayError):
    """We refused to send the order. ``reason`` is a code from ``trading.rules.rounding``."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(None, message or reason)
        self.reason = reason

    def __reduce__(self):
        return (_rebuild, (type(self), {"reason": self.reason, "message": self.message}))


class OrderTooSmall(OrderRefused):
    """Below minOrderQty (``below_min_qty``) or minNotionalValue (``below_min_notional``)."""


class UnknownInstrument(GatewayError):
    """The symbol is not a trading linear instrument on this venue."""

    def __init__(self, symbol: str) -> None:
        super().__init__(None, f"unknown instrument {symbol}")
        self.symbol = symbol

    def __reduce__(self):
        return (_rebuild, (type(self), {"symbol": self.symbol}))


class MalformedAnswer(GatewayError):
    """The venue answered, but not in the shape we parse: a missing or mistyped field, a number
    that is not one (NaN, Infinity, absurdly large), a time outside any calendar. Nothing was
    read from it. Not retried: the same answer would be refused again."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)

    def __reduce__(self):
        return (_rebuild, (type(self), {"message": self.message}))


def _rebuild(error_class: type[GatewayError], kwargs: dict) -> GatewayError:
    return error_class(**kwargs)


# retCode -> error class. Codes that mean "done" for a particular call
# (110001 on cancel, 110043 on set-leverage, 34040 on trading-stop) are handled
# by that call before it consults this table.
_ERROR_BY_RET_CODE: dict[int, type[GatewayError]] = {
    10000: RetryableError,  # Server Timeout: for orders the gateway reconciles first
    10001: BadRequest,
    10002: ClockSkewError,
    10003: AuthError,
    10004: AuthError,
    10005: AuthError,
    10007: AuthError,  # User authentication failed.
    10010: AuthError,  # Unmatched IP: the key is bound to other IP addresses
    33004: AuthError,  # (Derivatives) Your api key has expired
    10006: RetryableError,
    10016: RetryableError,
    110004: InsufficientBalance,
    110007: InsufficientBalance,
    110012: InsufficientBalance,
    110017: ReduceOnlyRejected,
    110072: DuplicateOrderLinkId,
    110094: BelowMinNotional,
}


def error_for_ret_code(code: int, message: str, *, retry_at_ms: int | None = None) -> GatewayError:
    """Our error for a non-zero Bybit ``retCode``.

    Unlisted 11xxxx codes are order-level refusals (``OrderRejected``);
    anything else is a plain ``GatewayError``.
    """
    error_class = _ERROR_BY_RET_CODE.get(code)
    if error_class is RetryableError:
        return RetryableError(code, message, retry_at_ms=retry_at_ms)
    if error_class is not None:
        return error_class(code, message)
    if 110000 <= code < 120000:
        return OrderRejected(code, message)
    return GatewayError(code, message)


def is_key_refusal(code: int | None) -> bool:
    """A ``retCode`` (or HTTP 401) by which the venue refuses our API key itself."""
    return code == 401 or _ERROR_BY_RET_CODE.get(code) is AuthError


def error_for_http_status(status: int, *, retry_at_ms: int | None = None) -> GatewayError:
    """Our error for a non-200 HTTP answer."""
    if status == 403:
        return IpBanned(status, "HTTP 403: IP rate limit breached or IP blocked")
    if status in (401,):
        return AuthError(status, "HTTP 401: unauthorised")
    if status == 429 or status >= 500:
        return RetryableError(status, f"HTTP {status}", retry_at_ms=retry_at_ms)
    return GatewayError(status, f"HTTP {status}")


class ExchangeUnreachable(RetryableError):
    """No usable answer: timeout, connection failure, or a body that was not JSON.

    Retryable for reads. For an order it means "outcome unknown": the gateway
    looks the order up by ``orderLinkId`` before deciding anything.
    """
