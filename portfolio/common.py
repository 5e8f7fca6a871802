"""What the portfolio strategy's modules share: its name and status words, the journal (every
PM decision, strategy ``pm``, also logged as ``pm_decision``) and its failure throttle."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from core import keys
from core.redis_client import redis_client
from portfolio.models import PortfolioOrder, PortfolioPosition
from trading.errors import GatewayError
from trading.models import Decision
from trading.order_flow import OrderJournal
from trading.services import decision_record

logger = logging.getLogger(__name__)

STRATEGY = Decision.Strategy.PORTFOLIO  # also the orderLinkId prefix: pm-entry-XRP-<hash>
TAKEN = Decision.Outcome.TAKEN
SKIPPED = Decision.Outcome.SKIPPED
FAILED = Decision.Outcome.FAILED

OPENING = PortfolioPosition.Status.OPENING
OPEN = PortfolioPosition.Status.OPEN
CLOSING = PortfolioPosition.Status.CLOSING
CLOSED = PortfolioPosition.Status.CLOSED
POSITION_FAILED = PortfolioPosition.Status.FAILED
PENDING = PortfolioOrder.Status.PENDING
FILLED = PortfolioOrder.Status.FILLED
ORDER_FAILED = PortfolioOrder.Status.FAILED
ENTRY = PortfolioOrder.Leg.ENTRY
ADD = PortfolioOrder.Leg.ADD
EXIT = PortfolioOrder.Leg.EXIT

# A failure or skip that repeats every minute (an add the venue keeps refusing) is
# journaled at most this often; every occurrence is still logged.
FAILURE_JOURNAL_INTERVAL_S = 300


def decimal_text(value: Decimal | None) -> str | None:
    """Decimals go into the journal's JSON as exact strings (JSON has no Decimal), without the
    trailing zeros of a computed value or a database column: "2.869", never "2.869000000000"."""
    if value is None:
        return None
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def momentum_text(value: Decimal | None) -> str | None:
    """A momentum % for the journal, to 4 decimals ("10.0000"); the decision used the exact value."""
    return None if value is None else str(value.quantize(Decimal("0.0001")))


def journal_write(
    *,
    action: str,
    outcome: str,
    reason_code: str,
    now: datetime,
    symbol: str = "",
    details: dict | None = None,
    order_link_id: str = "",
) -> None:
    decision_record(
        strategy=STRATEGY,
        action=action,
        outcome=outcome,
        symbol=symbol,
        reason_code=reason_code,
        details=details or {},
        order_link_id=order_link_id,
        at=now,
    )
    logger.info(
        "pm_decision action=%s outcome=%s symbol=%s reason=%s order_link_id=%s",
        action,
        outcome,
        symbol,
        reason_code,
        order_link_id,
    )


def failure_journal_due(what: str) -> bool:
    """True at most once per FAILURE_JOURNAL_INTERVAL_S for one repeating failure or skip."""
    key = keys.PM_FAILURE_JOURNALED.format(what=what)
    return bool(redis_client().set(key, "1", nx=True, ex=FAILURE_JOURNAL_INTERVAL_S))


def error_details(error: GatewayError) -> dict:
    # error.message is Bybit's retMsg or our own words, never the request (see trading.errors).
    return {"error": type(error).__name__, "code": error.code, "message": error.message}


# How PM's orders are journaled by ``trading.order_flow.order_send``.
ORDER_JOURNAL = OrderJournal(write=journal_write, error_details=error_details)
