"""Portfolio momentum (PM): a pyramid add to a winner, for the trail step: one more leg,
within the budget, under an orderLinkId that names the position, the add and the minute.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from portfolio import rules
from portfolio.book import book_committed, leg_failed, leg_settle_journal
from portfolio.common import (
    ADD,
    OPEN,
    ORDER_JOURNAL,
    SKIPPED,
    STRATEGY,
    decimal_text,
    failure_journal_due,
    journal_write,
)
from portfolio.models import PortfolioOrder, PortfolioPosition, PortfolioSettings
from trading.bybit import BybitGateway
from trading.errors import UnknownInstrument
from trading.order_flow import OrderStatus, order_send
from trading.rules import Side
from trading.rules.order_link_id import order_link_id

if TYPE_CHECKING:  # the trail step owns its result and calls in here
    from portfolio.trail import TrailResult

logger = logging.getLogger(__name__)


def add_send(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    price: Decimal,
    settings: PortfolioSettings,
    now: datetime,
    result: TrailResult,
) -> None:
    """Add one leg to a winner, within the budget."""
    symbol = position.symbol
    number = position.adds_made + 1
    leg_usdt = rules.leg_usdt(
        budget_usdt=settings.budget_usdt,
        max_positions=settings.max_positions,
        pyramid_max_adds=settings.pyramid_max_adds,
    )
    committed = book_committed()
    details = {
        "add": number,
        "max_adds": settings.pyramid_max_adds,
        "price": decimal_text(price),
        "last_add_price": decimal_text(position.last_add_price),
        "pyramid_step_pct": decimal_text(settings.pyramid_step_pct),
        "budget_usdt": decimal_text(settings.budget_usdt),
        "leg_usdt": decimal_text(leg_usdt),
        "committed_usdt": decimal_text(committed),
    }
    try:
        limits = gateway.instrument(symbol)
    except UnknownInstrument:
        return
    size = rules.leg_size(
        budget_usdt=settings.budget_usdt,
        committed_usdt=committed,
        leg_usdt=leg_usdt,
        price=price,
        limits=limits,
    )
    if size.reason is not None:
        if failure_journal_due(f"add-skip:{position.pk}:{number}:{size.reason}"):
            journal_write(
                action="add",
                outcome=SKIPPED,
                reason_code=size.reason,
                symbol=symbol,
                details=details,
                now=now,
            )
        return
    details.update({"qty": decimal_text(size.qty), "notional_usdt": decimal_text(size.notional)})
    # The minute is part of the key: an add refused by the venue is retried next minute
    # under a new id, while a step run twice within the minute finds its own row.
    link_id = order_link_id(
        strategy=STRATEGY,
        symbol=symbol,
        decision_key=f"p{position.pk}-add{number}-{rules.time_bucket(now)}",
        leg="add",
    )
    try:
        with transaction.atomic():
            claimed = PortfolioPosition.objects.filter(
                pk=position.pk, status=OPEN, adds_made=position.adds_made
            ).update(adds_made=number)
            if claimed != 1:
                return
            order = PortfolioOrder.objects.create(
                position=position,
                leg=ADD,
                order_link_id=link_id,
                qty=size.qty,
                reference_price=price,
                created_at=now,
            )
    except IntegrityError:
        return  # already sent this minute
    position.adds_made = number
    outcome = order_send(
        journal=ORDER_JOURNAL,
        action="add",
        symbol=symbol,
        order_link_id=link_id,
        place=partial(
            gateway.place_order,
            symbol=symbol,
            side=Side.BUY,
            qty=size.qty,
            order_link_id=link_id,
            reference_price=price,
        ),
        details=details,
        now=now,
        refusal_journal_due=lambda error: failure_journal_due(f"add:{position.pk}:{type(error).__name__}"),
    )
    if outcome.status is OrderStatus.UNKNOWN:
        result.failed.append(symbol)
        return
    if outcome.status is OrderStatus.REFUSED:
        error = outcome.error
        leg_failed(order=order, reason=type(error).__name__, now=now)
        result.failed.append(symbol)
        logger.warning("pm_add_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__)
        return
    if not leg_settle_journal(
        gateway=gateway,
        order=order,
        symbol=symbol,
        action="add",
        taken_reason="pyramid_step",
        details=details,
        now=now,
    ):
        result.failed.append(symbol)
        return
    result.added.append(symbol)
    logger.info(
        "pm_added symbol=%s add=%d qty=%s price=%s order_link_id=%s", symbol, number, size.qty, price, link_id
    )
