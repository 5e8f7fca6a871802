"""The one exchange gateway of a Celery worker process, shared by every task in it, and
`exchange_step`, which runs a periodic task's step on it.

An exchange that does not answer is a status, not a stack trace: `exchange_step` turns a
gateway error (including a gateway that cannot be prepared) into one log line, a record in
`core.exchange_status` and, once per outage, an alert. The beat is the retry: each of
these tasks runs again within seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.utils import timezone

from core.alerts import alert_send
from core.exchange_status import (
    KEY_REFUSED,
    REFUSED,
    UNREACHABLE,
    exchange_failure_record,
    exchange_ok_record,
    exchange_status_read,
)
from trading.alerting import auth_error_text
from trading.errors import (
    AuthError,
    ClockSkewError,
    ExchangeUnreachable,
    GatewayError,
    IpBanned,
    RetryableError,
)

logger = logging.getLogger(__name__)

_gateway = None
_gateway_lock = threading.Lock()


def worker_gateway():
    """One prepared gateway per worker process, built on first use.

    Built lazily, after the prefork pool has forked, so no two processes share an
    HTTP session. A gateway whose ``prepare()`` failed is not kept.
    """
    global _gateway
    if _gateway is None:
        with _gateway_lock:
            if _gateway is None:
                from trading.bybit import BybitGateway

                # No DCP window here: it guards the engine's resting orders and only counts with
                # the engine's dcp.future subscription; the engine sets it (best effort). A
                # worker that set it too would only add a call that some accounts refuse.
                gateway = BybitGateway.from_settings(dcp_window_s=0)
                gateway.prepare()
                _gateway = gateway
    # Bybit revises lot filters twice a month and lists symbols any day: reload once a day.
    _gateway.instruments.refresh_if_stale()
    return _gateway


def exchange_failure_kind(error: GatewayError) -> str | None:
    """UNREACHABLE (no usable answer), REFUSED (it answers no to every call of ours), or None:
    an answer about one request (a rate limit, an order refused) says the exchange is up."""
    if isinstance(error, ExchangeUnreachable) or (
        isinstance(error, RetryableError) and error.code is not None and 500 <= error.code < 600
    ):
        return UNREACHABLE
    if isinstance(error, AuthError | IpBanned | ClockSkewError):
        return REFUSED
    return None


def exchange_failure_note(error: GatewayError) -> bool:
    """Record a failed exchange call; alert once when it has become an outage. A refused key is
    recorded in plain words (what to fix) and alerted at once, once per outage (``auth_error``).
    True when this call began the alerted outage (the caller may say it once). Never raises."""
    kind = exchange_failure_kind(error)
    if kind is None:
        return False
    try:
        if isinstance(error, AuthError):
            text = auth_error_text(error.code, error.message)
            outage = exchange_failure_record(kind=KEY_REFUSED, error=text, alert_after_s=0)
            if outage:
                alert_send(f"⚠️ {text}", kind="auth_error")
            return outage
        outage = exchange_failure_record(kind=kind, error=f"{type(error).__name__}: {error}")
        if outage:
            alert_send(f"⚠️ {exchange_status_read().problem}", kind="exchange_unreachable")
        return outage
    except Exception as redis_error:  # Redis down: the log line is all we can do
        logger.warning("exchange_status_unrecorded error=%s", type(redis_error).__name__)
        return False


def exchange_ok_note() -> None:
    """Record a good answer; say so once when it ends an alerted outage. Never raises."""
    try:
        if exchange_ok_record():
            alert_send("✅ The exchange answers again.", kind="exchange_recovered")
    except Exception as redis_error:
        logger.warning("exchange_status_unrecorded error=%s", type(redis_error).__name__)


def exchange_step(task: str, step: Callable) -> dict:
    """Run a periodic task's ``step(gateway=, now=)`` and return its ``summary()``. A gateway
    error becomes a summary with ``error``, one warning line and a status record, not a traceback."""
    try:
        return step(gateway=worker_gateway(), now=timezone.now()).summary()
    except GatewayError as error:
        exchange_failure_note(error)
        logger.warning(
            "task_exchange_failed task=%s error=%s code=%s", task, type(error).__name__, error.code
        )
        return {"error": f"{type(error).__name__}: {error}"[:300]}
