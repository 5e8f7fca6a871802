"""Portfolio momentum (PM): the trailing-stop exit of one position, for the trail step. A
reduce-only close of PM's exact share, verified on the exchange before the symbol leaves the PM
set; an attempt that failed or filled only partly is followed by the next one.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError

from core.alerts import alert_send
from portfolio import rules
from portfolio.book import exit_verified, leg_failed, order_settle, position_close
from portfolio.common import (
    CLOSING,
    EXIT,
    FAILED,
    FILLED,
    OPEN,
    ORDER_FAILED,
    ORDER_JOURNAL,
    STRATEGY,
    TAKEN,
    decimal_text,
    failure_journal_due,
    journal_write,
)
from portfolio.models import PortfolioOrder, PortfolioPosition, PortfolioSettings
from trading.bybit import BybitGateway, OrderAck, Position, Ticker
from trading.errors import ReduceOnlyRejected
from trading.order_flow import OrderStatus, order_send
from trading.rules import Side
from trading.rules.order_link_id import order_link_id

if TYPE_CHECKING:  # the trail step owns its result and calls in here
    from portfolio.trail import TrailResult

logger = logging.getLogger(__name__)


def exit_start(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue: Position,
    price: Decimal,
    settings: PortfolioSettings,
    now: datetime,
    result: TrailResult,
) -> None:
    """The price hit the trailing level: claim the open position for its exit and send the first attempt."""
    claimed = PortfolioPosition.objects.filter(
        pk=position.pk, status=OPEN, exit_attempts=position.exit_attempts
    ).update(status=CLOSING, exit_reason="trailing_stop", exit_attempts=position.exit_attempts + 1)
    if claimed != 1:
        return
    position.refresh_from_db()
    details = {
        "price": decimal_text(price),
        "high_water_price": decimal_text(position.high_water_price),
        "trailing_stop_pct": decimal_text(settings.trailing_stop_pct),
        "stop_price": decimal_text(
            rules.trailing_stop_price(
                high_water_price=position.high_water_price, trailing_stop_pct=settings.trailing_stop_pct
            )
        ),
        "entry_price": decimal_text(position.entry_price),
        "adds_made": position.adds_made,
    }
    _exit_send(
        gateway=gateway, position=position, venue=venue, price=price, details=details, now=now, result=result
    )


def exit_retry(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue: Position,
    ticker: Ticker | None,
    now: datetime,
    result: TrailResult,
) -> None:
    """A closing position whose last exit attempt failed or filled only partly: send the next one."""
    attempt = position.exit_attempts
    if not PortfolioPosition.objects.filter(pk=position.pk, status=CLOSING, exit_attempts=attempt).update(
        exit_attempts=attempt + 1
    ):
        return
    position.exit_attempts = attempt + 1
    price = ticker.last_price if ticker is not None else venue.mark_price or venue.avg_price
    _exit_send(
        gateway=gateway,
        position=position,
        venue=venue,
        price=price,
        details={"retry": True, "price": decimal_text(price)},
        now=now,
        result=result,
    )


def _exit_send(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue: Position,
    price: Decimal,
    details: dict,
    now: datetime,
    result: TrailResult,
) -> None:
    """Close PM's share reduce-only: the whole position when it is all PM's, else exactly PM's qty."""
    symbol = position.symbol
    link_id = order_link_id(
        strategy=STRATEGY,
        symbol=symbol,
        decision_key=f"p{position.pk}-exit{position.exit_attempts}",
        leg="exit",
    )
    qty = min(position.qty, venue.size)
    details = {
        **details,
        "qty": decimal_text(qty),
        "position_size": decimal_text(venue.size),
        "reduce_only": True,
    }
    try:
        order = PortfolioOrder.objects.create(
            position=position, leg=EXIT, order_link_id=link_id, qty=qty, reference_price=price, created_at=now
        )
    except IntegrityError:
        return  # this attempt was already sent: it settles, then the next pass decides

    def place() -> OrderAck | None:
        try:
            if qty == venue.size:
                return gateway.close_position(position=venue, order_link_id=link_id)
            return gateway.place_order(
                symbol=symbol, side=Side.SELL, qty=qty, order_link_id=link_id, reduce_only=True
            )
        except ReduceOnlyRejected:
            if exit_verified(gateway=gateway, position=position):
                return None  # 110017: nothing left to reduce, the long was closed meanwhile
            raise

    outcome = order_send(
        journal=ORDER_JOURNAL,
        action="exit",
        symbol=symbol,
        order_link_id=link_id,
        place=place,
        details=details,
        now=now,
        refusal_journal_due=lambda error: failure_journal_due(f"exit:{position.pk}:{type(error).__name__}"),
    )
    if outcome.status is OrderStatus.SKIPPED:
        leg_failed(order=order, reason=ReduceOnlyRejected.__name__, now=now)
        position_close(position=position, reason=position.exit_reason, exit_price=None, now=now)
        result.closed_elsewhere.append(symbol)
        journal_write(
            action="exit",
            outcome=TAKEN,
            reason_code="closed_elsewhere",
            symbol=symbol,
            details=details,
            now=now,
        )
        return
    if outcome.status is OrderStatus.UNKNOWN:
        result.failed.append(symbol)
        return
    if outcome.status is OrderStatus.REFUSED:
        error = outcome.error
        leg_failed(order=order, reason=type(error).__name__, now=now)
        result.failed.append(symbol)
        logger.warning("pm_exit_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__)
        return
    status = order_settle(gateway=gateway, order=order, now=now)
    order.refresh_from_db()
    details.update(
        {"filled_qty": decimal_text(order.filled_qty), "fill_price": decimal_text(order.fill_price)}
    )
    if status != FILLED:
        if status == ORDER_FAILED:
            result.failed.append(symbol)
        journal_write(
            action="exit",
            outcome=FAILED if status == ORDER_FAILED else TAKEN,
            reason_code="not_filled" if status == ORDER_FAILED else "exit_sent",
            symbol=symbol,
            details={**details, "order_status": status, "error": order.error},
            order_link_id=link_id,
            now=now,
        )
        return
    if not exit_verified(gateway=gateway, position=position):
        # Partly filled, or the exchange could not be read: stays closing, the next pass follows up.
        journal_write(
            action="exit",
            outcome=TAKEN,
            reason_code="exit_unverified",
            symbol=symbol,
            details=details,
            order_link_id=link_id,
            now=now,
        )
        return
    position_close(position=position, reason=position.exit_reason, exit_price=order.fill_price, now=now)
    result.exited.append(symbol)
    alert_send(
        f"PM exit {symbol}: sold {details['filled_qty']} @ {details['fill_price']} "
        f"({position.exit_reason or 'trailing_stop'}).",
        kind="exit",
    )
    journal_write(
        action="exit",
        outcome=TAKEN,
        reason_code=position.exit_reason or "trailing_stop",
        symbol=symbol,
        details=details,
        order_link_id=link_id,
        now=now,
    )
    logger.info(
        "pm_exited symbol=%s qty=%s fill_price=%s order_link_id=%s", symbol, qty, order.fill_price, link_id
    )
