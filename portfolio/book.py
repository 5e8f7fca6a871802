"""Portfolio momentum (PM): the book. The Redis set of PM-managed symbols, the lock that keeps the
two steps (``portfolio.scan``, ``portfolio.trail``) apart, what the book has committed, and
settling its orders and legs from what the exchange says.

Safety, in the order an order goes out:
1. The decision gets a deterministic ``orderLinkId`` (entry: the symbol and the scan's
   minute; add: the position, the add's number and the minute; exit: the position and
   the attempt). A ``PortfolioOrder`` row with that unique id is written *before* the
   order is sent, so a step that runs twice finds the row and sends nothing, and a
   worker that died after sending leaves a ``pending`` row that a later pass settles
   by looking the order up on the exchange.
2. The symbol joins the Redis set of PM-managed symbols (``keys.PM_SYMBOLS``) before an
   entry goes out, and a config event tells the liquidation engine at once, so WL never
   enters what PM is entering. It leaves the set only once the exit is verified on the
   exchange (or the entry definitely failed). Each pass also rewrites the set from the
   database, so it always equals the symbols PM holds.
3. The two steps never run at once: they share a Redis lock over the PM book, so two
   workers can't spend the same budget or send the same add.
4. No exchange call is made inside a database transaction.

PM only touches positions it opened: it never enters a symbol that already has a
position, and an exit closes at most PM's own share (``PortfolioPosition.qty``).
New entries and adds need PM enabled and trading allowed (``TradingState.may_trade``);
exits always run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from redis.exceptions import LockError

from core import keys
from core.alerts import alert_send
from core.redis_client import redis_client
from portfolio import rules
from portfolio.common import (
    ADD,
    CLOSED,
    CLOSING,
    ENTRY,
    EXIT,
    FAILED,
    FILLED,
    OPEN,
    OPENING,
    ORDER_FAILED,
    PENDING,
    POSITION_FAILED,
    TAKEN,
    decimal_text,
    journal_write,
)
from portfolio.models import PortfolioOrder, PortfolioPosition
from trading.bybit import BybitGateway, Position
from trading.errors import GatewayError
from trading.services import events_publish

logger = logging.getLogger(__name__)

# A pass takes seconds; the lock outlives any pass, and frees itself if a worker dies.
BOOK_LOCK_TTL_S = 300
# How long a step waits for the other one to finish before giving up this beat.
BOOK_LOCK_WAIT_S = 10.0
# An order the venue has no record of this long after it was written down never got there.
ORDER_LOOKUP_GRACE = timedelta(minutes=2)


# ----------------------------------------------------------------------------------
# The PM-managed set in Redis, and the book lock
# ----------------------------------------------------------------------------------


def pm_set_add(symbol: str) -> None:
    """Mark ``symbol`` PM-managed; the engine reloads its config at once."""
    if redis_client().sadd(keys.PM_SYMBOLS, symbol):
        events_publish("config")


def pm_set_remove(symbol: str) -> None:
    """Unmark ``symbol`` unless PM still has a live position on it."""
    if PortfolioPosition.objects.active().filter(symbol=symbol).exists():
        return
    if redis_client().srem(keys.PM_SYMBOLS, symbol):
        events_publish("config")


def pm_symbols_sync() -> bool:
    """Make the Redis set equal the symbols PM holds (after a Redis restart, a crash midway...).

    Returns whether it changed anything.
    """
    wanted = set(PortfolioPosition.objects.active().values_list("symbol", flat=True))
    client = redis_client()
    current = set(client.smembers(keys.PM_SYMBOLS))
    missing, extra = wanted - current, current - wanted
    if missing:
        client.sadd(keys.PM_SYMBOLS, *missing)
    if extra:
        client.srem(keys.PM_SYMBOLS, *extra)
    if not (missing or extra):
        return False
    logger.warning(
        "pm_symbols_resynced added=%s removed=%s", ",".join(sorted(missing)), ",".join(sorted(extra))
    )
    events_publish("config")
    return True


@contextmanager
def book_lock() -> Iterator[bool]:
    """Hold the PM book (one step at a time, across workers); yields whether it was acquired."""
    lock = redis_client().lock(
        keys.PM_BOOK_LOCK, timeout=BOOK_LOCK_TTL_S, blocking_timeout=BOOK_LOCK_WAIT_S, thread_local=False
    )
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except LockError:  # it outlived its TTL: someone else may hold it now; leave theirs alone
                logger.warning("pm_book_lock_expired")


# ----------------------------------------------------------------------------------
# Orders: write down, send, settle
# ----------------------------------------------------------------------------------


def book_committed() -> Decimal:
    """USDT the PM book holds or is buying: filled legs at their fill prices, pending ones at their
    decision prices."""
    cost = PortfolioPosition.objects.active().aggregate(total=Sum("cost_usdt"))["total"] or Decimal("0")
    pending = PortfolioOrder.objects.filter(status=PENDING, leg__in=[ENTRY, ADD]).values_list(
        "qty", "reference_price"
    )
    return cost + sum((qty * price for qty, price in pending), Decimal("0"))


def leg_filled(*, order: PortfolioOrder, qty: Decimal, price: Decimal, now: datetime) -> bool:
    """Record a fill on the order and its position; False if another pass already settled it."""
    with transaction.atomic():
        claimed = PortfolioOrder.objects.filter(pk=order.pk, status=PENDING).update(
            status=FILLED, filled_qty=qty, fill_price=price, settled_at=now
        )
        if claimed != 1:
            return False
        position = PortfolioPosition.objects.select_for_update().get(pk=order.position_id)
        if order.leg == ENTRY:
            position.status = OPEN
            position.qty = qty
            position.cost_usdt = qty * price
            position.entry_price = price
            position.last_add_price = price
            position.high_water_price = rules.high_water(previous=position.high_water_price, price=price)
            position.opened_at = now
        elif order.leg == ADD:
            position.qty += qty
            position.cost_usdt += qty * price
            position.last_add_price = price
        else:
            remaining = max(position.qty - qty, Decimal("0"))
            if position.qty > 0:
                position.cost_usdt = position.cost_usdt * remaining / position.qty
            position.qty = remaining
            position.exit_price = price
        position.save()
    order.refresh_from_db()
    order.position = position
    return True


def leg_failed(*, order: PortfolioOrder, reason: str, now: datetime) -> bool:
    """Nothing traded: undo what the leg reserved. False if another pass already settled it."""
    with transaction.atomic():
        claimed = PortfolioOrder.objects.filter(pk=order.pk, status=PENDING).update(
            status=ORDER_FAILED, error=reason[:200], settled_at=now
        )
        if claimed != 1:
            return False
        positions = PortfolioPosition.objects.filter(pk=order.position_id)
        if order.leg == ENTRY:
            positions.filter(status=OPENING).update(status=POSITION_FAILED, closed_at=now)
        elif order.leg == ADD:
            # The add did not happen: it does not count against pyramid_max_adds.
            positions.filter(adds_made__gt=0).update(adds_made=F("adds_made") - 1)
        # A failed exit leaves the position closing: the next pass sends a new attempt.
    if order.leg == ENTRY:
        pm_set_remove(order.position.symbol)
    return True


def order_settle(*, gateway: BybitGateway, order: PortfolioOrder, now: datetime) -> str:
    """Look a pending order up on the exchange and record what it says; returns its status after."""
    symbol = order.position.symbol
    try:
        venue = gateway.get_order(order_link_id=order.order_link_id, symbol=symbol)
    except GatewayError as error:
        logger.warning(
            "pm_order_lookup_failed symbol=%s order_link_id=%s code=%s error=%s",
            symbol,
            order.order_link_id,
            error.code,
            type(error).__name__,
        )
        return PENDING
    if venue is None:
        if now - order.created_at >= ORDER_LOOKUP_GRACE:
            leg_failed(order=order, reason="not_on_exchange", now=now)
            return ORDER_FAILED
        return PENDING  # Bybit creates orders asynchronously: look again next pass
    if venue.is_open:
        return PENDING
    if venue.cum_exec_qty > 0:
        price = venue.avg_price or venue.cum_exec_value / venue.cum_exec_qty
        leg_filled(order=order, qty=venue.cum_exec_qty, price=price, now=now)
        return FILLED
    leg_failed(order=order, reason=venue.reject_reason or venue.status or "not_filled", now=now)
    return ORDER_FAILED


def leg_settle_journal(
    *,
    gateway: BybitGateway,
    order: PortfolioOrder,
    symbol: str,
    action: str,
    taken_reason: str,
    details: dict,
    now: datetime,
) -> bool:
    """Settle a buy leg the exchange took (an entry or an add), add its fill to ``details``
    and journal it: taken with ``taken_reason``, or failed ``not_filled``. True when it filled
    or is still pending (a later pass settles it), False when it failed."""
    status = order_settle(gateway=gateway, order=order, now=now)
    order.refresh_from_db()
    details.update(
        {
            "order_status": status,
            "filled_qty": decimal_text(order.filled_qty),
            "fill_price": decimal_text(order.fill_price),
        }
    )
    failed = status == ORDER_FAILED
    journal_write(
        action=action,
        outcome=FAILED if failed else TAKEN,
        reason_code="not_filled" if failed else taken_reason,
        symbol=symbol,
        details={**details, "error": order.error} if failed else details,
        order_link_id=order.order_link_id,
        now=now,
    )
    if not failed:
        what = "entry" if action == "enter" else action
        fill = (
            f"{details['filled_qty']} @ {details['fill_price']}"
            if status == FILLED
            else f"{status}, qty {order.qty}"
        )
        alert_send(f"PM {what} {symbol} long: {fill}.", kind="entry")
    return not failed


def long_of(positions: list[Position], symbol: str) -> Position | None:
    for position in positions:
        if position.symbol == symbol and position.is_long:
            return position
    return None


def position_close(
    *, position: PortfolioPosition, reason: str, exit_price: Decimal | None, now: datetime
) -> bool:
    """Mark a position closed and release its symbol; False if it was not live any more."""
    changes = {"status": CLOSED, "closed_at": now, "exit_reason": reason[:40]}
    if exit_price is not None:
        changes["exit_price"] = exit_price
    closed = PortfolioPosition.objects.filter(pk=position.pk, status__in=[OPEN, CLOSING]).update(**changes)
    if closed:
        pm_set_remove(position.symbol)
    return bool(closed)


def exit_verified(*, gateway: BybitGateway, position: PortfolioPosition) -> bool:
    """PM's share is gone: its exit fills covered it, or the exchange shows no long at all."""
    position.refresh_from_db()
    if position.qty <= 0:
        return True
    try:
        return long_of(gateway.positions(symbol=position.symbol), position.symbol) is None
    except GatewayError:
        return False  # unverified: the next pass looks again


def book_settle(*, gateway: BybitGateway, now: datetime) -> list[str]:
    """Settle every order an earlier pass left pending; journal what became known. Returns their ids."""
    settled = []
    for order in PortfolioOrder.objects.filter(status=PENDING).select_related("position").order_by("id"):
        status = order_settle(gateway=gateway, order=order, now=now)
        if status == PENDING:
            continue
        settled.append(order.order_link_id)
        position = order.position
        position.refresh_from_db()
        action = {ENTRY: "enter", ADD: "add", EXIT: "exit"}[order.leg]
        details = {"leg": order.leg, "qty": decimal_text(order.qty), "note": "settled after the fact"}
        if status == FILLED:
            order.refresh_from_db()
            details.update(
                {"filled_qty": decimal_text(order.filled_qty), "fill_price": decimal_text(order.fill_price)}
            )
            if order.leg == EXIT and exit_verified(gateway=gateway, position=position):
                position_close(
                    position=position, reason=position.exit_reason, exit_price=order.fill_price, now=now
                )
        else:
            details["error"] = order.error
        journal_write(
            action=action,
            outcome=TAKEN if status == FILLED else FAILED,
            reason_code="settled_filled" if status == FILLED else "settled_failed",
            symbol=position.symbol,
            details=details,
            order_link_id=order.order_link_id,
            now=now,
        )
    return settled
