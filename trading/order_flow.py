"""Sending one strategy order: place it once, say what became of it, journal a failure.

The portfolio strategy's entries, adds and exits and the risk manager's IM reduction all
send their orders through ``order_send``. Policy, stated once:
- The order is placed once. The gateway never retries order creation: after a timeout
  or a 5xx it looks the order up by ``orderLinkId`` (``trading.bybit.orders``), and only
  what that lookup could not settle reaches us as ``OrderOutcomeUnknown``.
- An unknown outcome may be on the venue: it is journaled as failed (``outcome_unknown``)
  and the caller must not treat the order as refused; it reconciles by ``orderLinkId``.
- Any other ``GatewayError`` means nothing was placed (the venue or our own checks said
  no, or a read the placement needed failed): journaled as failed, with the error's class
  name as the reason code.
- A refusal by the exchange (a Bybit retCode) is alerted as ``order_refused``, refused keys
  as ``auth_error`` (``trading.alerting``); the rate limit folds repeats.
- What a placed order did (its fill, the caller's book) is the caller's to record.
Blocking; never call it inside a database transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from trading.alerting import gateway_error_alert
from trading.bybit import OrderAck
from trading.errors import GatewayError, OrderOutcomeUnknown
from trading.models import Decision

TAKEN = Decision.Outcome.TAKEN
FAILED = Decision.Outcome.FAILED


class JournalWrite(Protocol):
    """Write one journal row for a strategy (its own writer: it sets the strategy, it may log the row)."""

    def __call__(
        self,
        *,
        action: str,
        outcome: str,
        reason_code: str,
        now: datetime,
        symbol: str = "",
        details: dict | None = None,
        order_link_id: str = "",
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class OrderJournal:
    """How one strategy journals its orders: its row writer, and what of an error goes into the details."""

    write: JournalWrite
    error_details: Callable[[GatewayError], dict]


class OrderStatus(enum.StrEnum):
    PLACED = "placed"  # the venue has the order (acknowledged, or found by orderLinkId after a lost answer)
    UNKNOWN = "unknown"  # sent, and neither an answer nor the gateway's lookup settled it: it may exist
    REFUSED = "refused"  # nothing was placed
    SKIPPED = "skipped"  # ``place`` returned None: a last check said no order is needed; nothing journaled


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    status: OrderStatus
    order_link_id: str
    ack: OrderAck | None = None
    error: GatewayError | None = None  # set for UNKNOWN and REFUSED


def order_send(
    *,
    journal: OrderJournal,
    action: str,
    symbol: str,
    order_link_id: str,
    place: Callable[[], OrderAck | None],
    details: dict,
    now: datetime,
    taken_reason: str = "",
    refusal_journal_due: Callable[[GatewayError], bool] | None = None,
) -> OrderOutcome:
    """Call ``place`` once and journal what it came to under ``action``.

    ``place`` sends the order under ``order_link_id`` (``place_order`` or ``close_position``)
    and returns the acknowledgement; it may read what it needs first (an instrument, the
    position) and add to ``details`` as it goes, and it returns None when a last check
    finds no order is needed (the caller journals why).

    Journal rows, each with ``details`` as they stand after ``place`` and the order's id:
    - unknown outcome: failed, ``outcome_unknown``, plus the error's details;
    - refused: failed, the error's class name, plus the error's details, when
      ``refusal_journal_due(error)`` says so (a throttle for failures that repeat every
      pass; every refusal is journaled without one);
    - placed: taken, ``taken_reason``, when one is given; without it the caller journals
      the result itself once it knows more (the fill).
    """
    try:
        ack = place()
    except OrderOutcomeUnknown as error:
        journal.write(
            action=action,
            outcome=FAILED,
            reason_code="outcome_unknown",
            symbol=symbol,
            details={**details, **journal.error_details(error)},
            order_link_id=order_link_id,
            now=now,
        )
        return OrderOutcome(status=OrderStatus.UNKNOWN, order_link_id=order_link_id, error=error)
    except GatewayError as error:
        gateway_error_alert(error, order=action, symbol=symbol)  # refused order or refused keys
        if refusal_journal_due is None or refusal_journal_due(error):
            journal.write(
                action=action,
                outcome=FAILED,
                reason_code=type(error).__name__,
                symbol=symbol,
                details={**details, **journal.error_details(error)},
                order_link_id=order_link_id,
                now=now,
            )
        return OrderOutcome(status=OrderStatus.REFUSED, order_link_id=order_link_id, error=error)
    if ack is None:
        return OrderOutcome(status=OrderStatus.SKIPPED, order_link_id=order_link_id)
    if taken_reason:
        journal.write(
            action=action,
            outcome=TAKEN,
            reason_code=taken_reason,
            symbol=symbol,
            details=details,
            order_link_id=order_link_id,
            now=now,
        )
    return OrderOutcome(status=OrderStatus.PLACED, order_link_id=order_link_id, ack=ack)
