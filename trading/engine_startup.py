"""The liquidation engine's one-off start-up records, blocking (the runner calls them from a
thread before trading starts):

- ``dcp_outcome_note``: what became of the DCP window. Bybit enables Disconnect-Cancel-All
  only for some accounts and refuses the call on the others; that is not a reason to stop.
  A refusal is journaled at every start (the record) and alerted once, until a later start
  sets the window again (a Redis flag, so a restart loop does not repeat the alert).
- ``journal_recover``: the journal rows the last run lost. The engine journals its orders
  in batches; a crash between an order and the next flush loses the row, and with it the
  cooldown and "one entry per cascade" that the journal restores at start. The exchange
  still has every order under our ``orderLinkId``: entries of ours without a row get one,
  marked recovered.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from core import keys
from core.alerts import alert_send
from core.redis_client import redis_client
from trading.bybit import BybitGateway
from trading.models import Decision
from trading.rules import Side
from trading.rules.decision import ENTRY_LEG, STRATEGY

logger = logging.getLogger(__name__)

WL_ENTRY_PREFIX = f"{STRATEGY}-{ENTRY_LEG}-"  # trading.rules.order_link_id's shape
DCP_ACTION = "dcp_window"
DCP_REFUSED = "dcp_refused"


def dcp_refused_text(*, code: int | None, message: str, window_s: int) -> str:
    return (
        f"Bybit refused the DCP window ({window_s} s; retCode {code}: {message.rstrip('. ')}). "
        "Disconnect-Cancel-All is off for this account: trading and protection run without it; "
        "resting orders are not cancelled by Bybit if the engine's connection drops."
    )


def dcp_outcome_note(*, gateway: BybitGateway) -> None:
    """Journal and alert (once) a refused DCP window; forget the alert when it was set. Never raises."""
    try:
        if gateway.dcp_active:
            redis_client().delete(keys.ENGINE_DCP_REFUSAL_ALERTED)
            return
        error = gateway.dcp_refusal
        if error is None:
            return  # DCP not asked for (window 0)
        Decision.objects.create(
            strategy=Decision.Strategy.LIQUIDATION,
            action=DCP_ACTION,
            outcome=Decision.Outcome.FAILED,
            reason_code=DCP_REFUSED,
            details={"error_code": error.code, "error": error.message, "window_s": gateway.dcp_window_s},
        )
        if _first_refusal(error.code):
            text = dcp_refused_text(code=error.code, message=error.message, window_s=gateway.dcp_window_s)
            alert_send(f"⚠️ {text}", kind="dcp_refused")
    except Exception as failure:  # the record of an optional feature must not stop the start
        logger.error("dcp_outcome_note_failed error=%s", type(failure).__name__)


def _first_refusal(code: int | None) -> bool:
    """Whether no start since the window was last set has alerted the refusal yet. Redis down:
    True (as in core.alerts, a repeated alert is better than a lost one)."""
    try:
        return bool(redis_client().set(keys.ENGINE_DCP_REFUSAL_ALERTED, str(code), nx=True))
    except Exception as failure:
        logger.warning("dcp_alert_flag_unread error=%s", type(failure).__name__)
        return True


# How far back a start looks for entries of ours without a journal row. A lost row is one
# of the last batch before a crash; a day covers any restart delay and every cooldown
# (and stays inside Bybit's 7-day history window).
RECOVERY_WINDOW = timedelta(days=1)
RECOVERED = "recovered"


def journal_recover(*, gateway: BybitGateway, now: datetime | None = None) -> list[Decision]:
    """Journal rows for our WL entries the exchange has (order history and open orders, by our
    ``orderLinkId`` prefix) that the journal lacks: an accepted order is ``taken``, a rejected one
    ``failed``, both with reason ``recovered``, at the order's own creation time (so cooldowns
    restored from the journal count them). Returns the rows written. Raises ``GatewayError``."""
    now = now or timezone.now()
    since = now - RECOVERY_WINDOW
    orders = {}
    for order in gateway.order_history(start=since, end=now) + gateway.open_orders():
        if order.order_link_id.startswith(WL_ENTRY_PREFIX) and not order.reduce_only:
            orders.setdefault(order.order_link_id, order)
    if not orders:
        return []
    journaled = set(
        Decision.objects.filter(order_link_id__in=list(orders)).values_list("order_link_id", flat=True)
    )
    rows = [_recovered_row(order, now) for link_id, order in orders.items() if link_id not in journaled]
    Decision.objects.bulk_create(rows)
    for row in rows:
        logger.warning(
            "journal_row_recovered symbol=%s order_link_id=%s outcome=%s",
            row.symbol,
            row.order_link_id,
            row.outcome,
        )
    return rows


def _recovered_row(order, now: datetime) -> Decision:
    refused = order.status == "Rejected"
    return Decision(
        created_at=order.created_at or now,
        strategy=Decision.Strategy.LIQUIDATION,
        symbol=order.symbol,
        action="open_long" if order.side is Side.BUY else "open_short",
        outcome=Decision.Outcome.FAILED if refused else Decision.Outcome.TAKEN,
        reason_code=RECOVERED,
        order_link_id=order.order_link_id,
        details={
            RECOVERED: True,  # rebuilt from the exchange: the decision's own figures are lost
            "order_id": order.order_id,
            "order_status": order.status,
            "side": order.side.value,
            "qty": str(order.qty),
            "filled_qty": str(order.cum_exec_qty),
            "avg_price": None if order.avg_price is None else str(order.avg_price),
            "reject_reason": order.reject_reason or None,
        },
    )
