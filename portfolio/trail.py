"""Portfolio momentum (PM): the trail step (``portfolio_trail_step``, every minute): settles
orders left pending, raises the high-water marks from the tickers, exits on the trailing stop
(``portfolio.exits``) and adds to winners (``portfolio.adds``). The book's safety rules are in
``portfolio.book``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from core.panic_lock import trading_switches
from portfolio import rules
from portfolio.adds import add_send
from portfolio.backstop import (
    EXCHANGE_TRAILING_STOP,
    backstop_keep,
    exchange_stop_alert,
    exchange_stop_exit_price,
)
from portfolio.book import book_lock, book_settle, long_of, pm_symbols_sync, position_close
from portfolio.common import CLOSING, EXIT, FILLED, OPEN, PENDING, TAKEN, decimal_text, journal_write
from portfolio.exits import exit_retry, exit_start
from portfolio.models import PortfolioPosition, PortfolioSettings
from trading.bybit import BybitGateway, Position, Ticker

logger = logging.getLogger(__name__)


@dataclass
class TrailResult:
    """What one call of ``portfolio_trail_step`` did.

    ``status``: ``ran``, ``idle`` (PM holds nothing), ``busy`` (the scan held the book).
    ``adds_blocked``: why adds were off this pass (``disabled``, ``trading_not_allowed``).
    """

    status: str = "ran"
    high_water_raised: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)
    closed_elsewhere: list[str] = field(default_factory=list)
    exchange_stopped: list[str] = field(default_factory=list)  # closed by the exchange's trailing stop
    backstop_set: list[str] = field(default_factory=list)  # the exchange's trailing stop set or moved
    failed: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    adds_blocked: str = ""
    why: dict[str, str] = field(default_factory=dict)  # symbol -> what decided its exit or add
    dry_run: bool = False  # decided only: the lists say what a pass would do; nothing was sent

    @property
    def found_work(self) -> bool:
        return bool(
            self.added
            or self.exited
            or self.closed_elsewhere
            or self.exchange_stopped
            or self.backstop_set
            or self.failed
            or self.settled
        )

    def summary(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def portfolio_trail_step(*, gateway: BybitGateway, now: datetime, dry_run: bool = False) -> TrailResult:
    """One minute of position care for every position PM holds.

    - Settles orders left pending, and keeps the Redis PM set equal to PM's positions.
    - A position the exchange no longer shows is closed in the book: ``exchange_trailing_stop``
      when its last close was the exchange's trailing stop (``portfolio.backstop``), else
      ``closed_elsewhere`` (daily flatten, panic, by hand); one the exchange shrank keeps
      the smaller size.
    - Raises each high-water mark to the last price (tickers).
    - Exits a long whose price is at or below its trailing level: a reduce-only close of
      PM's exact share, verified on the exchange before the symbol leaves the PM set.
      Exits run whatever the trading switches say.
    - Adds a leg to a winner (``portfolio.rules.pyramid_due``), within the budget, only
      while PM is enabled and trading is allowed.
    - Keeps the exchange's trailing stop on each open long (``portfolio.backstop``).
    A failure to read tickers or positions raises (the task retries).

    ``dry_run`` (``manage.py portfolio_scan --dry-run``) decides the exits and adds and says
    so in the result, but sends nothing and writes nothing (no settling, no high-water mark,
    no journal, no exchange trailing stop).
    """
    result = TrailResult(dry_run=dry_run)
    with book_lock() as held:
        if not held:
            logger.info("pm_trail_busy")
            result.status = "busy"
            return result
        if not dry_run:
            result.settled = book_settle(gateway=gateway, now=now)
            pm_symbols_sync()
        positions = list(PortfolioPosition.objects.filter(status__in=[OPEN, CLOSING]).order_by("id"))
        if not positions:
            result.status = "idle"
            return result
        settings = PortfolioSettings.load()
        if not settings.enabled:
            result.adds_blocked = "disabled"
        elif not trading_switches().may_trade(now):
            result.adds_blocked = "trading_not_allowed"
        tickers = {ticker.symbol: ticker for ticker in gateway.tickers()}
        venue_positions = gateway.positions()
        for position in positions:
            _trail_one(
                gateway=gateway,
                position=position,
                venue=long_of(venue_positions, position.symbol),
                ticker=tickers.get(position.symbol),
                settings=settings,
                now=now,
                result=result,
            )
    return result


def _trail_one(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue: Position | None,
    ticker: Ticker | None,
    settings: PortfolioSettings,
    now: datetime,
    result: TrailResult,
) -> None:
    symbol = position.symbol
    if position.orders.filter(status=PENDING).exists():
        return  # an order of ours is in flight: decide nothing on top of it until it settles
    if result.dry_run:
        _trail_decide(position=position, venue=venue, ticker=ticker, settings=settings, result=result)
        return
    if position.status == CLOSING and position.qty <= 0:
        # Its exit filled in full earlier but could not be verified then: it can be now.
        order = position.orders.filter(leg=EXIT, status=FILLED).order_by("-id").first()
        exit_price = order.fill_price if order else None
        if position_close(position=position, reason=position.exit_reason, exit_price=exit_price, now=now):
            result.exited.append(symbol)
            journal_write(
                action="exit",
                outcome=TAKEN,
                reason_code=position.exit_reason or "trailing_stop",
                symbol=symbol,
                details={"fill_price": decimal_text(exit_price), "note": "verified after the fact"},
                order_link_id=order.order_link_id if order else "",
                now=now,
            )
        return
    if venue is None:
        # Our long is gone and we did not close it: the exchange's trailing stop (the backstop,
        # while no worker looked), or the daily flatten, a panic or a hand.
        _gone_release(gateway=gateway, position=position, ticker=ticker, now=now, result=result)
        return
    if venue.size < position.qty:
        _position_shrink(position=position, size=venue.size, now=now)
    qty_before = position.qty
    if position.status == CLOSING:
        exit_retry(gateway=gateway, position=position, venue=venue, ticker=ticker, now=now, result=result)
        return
    price = ticker.last_price if ticker is not None and ticker.last_price > 0 else venue.mark_price
    if price is None or price <= 0:
        return
    if position.high_water_price is None or price > position.high_water_price:
        raised = PortfolioPosition.objects.filter(
            Q(high_water_price__lt=price) | Q(high_water_price__isnull=True), pk=position.pk, status=OPEN
        ).update(high_water_price=price)
        if raised:
            position.high_water_price = price
            result.high_water_raised.append(symbol)
    if rules.trailing_stop_hit(
        price=price, high_water_price=position.high_water_price, trailing_stop_pct=settings.trailing_stop_pct
    ):
        exit_start(
            gateway=gateway,
            position=position,
            venue=venue,
            price=price,
            settings=settings,
            now=now,
            result=result,
        )
        return
    if _add_due(position=position, price=price, settings=settings, result=result):
        add_send(gateway=gateway, position=position, price=price, settings=settings, now=now, result=result)
        position.refresh_from_db()
        if position.orders.filter(status=PENDING).exists():
            return  # the add is not settled: the next pass checks the backstop
        venue_size = venue.size + (position.qty - qty_before)
    else:
        venue_size = venue.size
    if backstop_keep(
        gateway=gateway,
        position=position,
        venue_size=venue_size,
        venue_distance=venue.trailing_stop,
        settings=settings,
        now=now,
    ):
        result.backstop_set.append(symbol)


def _add_due(
    *, position: PortfolioPosition, price: Decimal, settings: PortfolioSettings, result: TrailResult
) -> bool:
    """A pyramid add is due at ``price`` (and adds are not blocked this pass)."""
    return (
        not result.adds_blocked
        and position.last_add_price is not None
        and rules.pyramid_due(
            price=price,
            last_add_price=position.last_add_price,
            pyramid_step_pct=settings.pyramid_step_pct,
            adds_made=position.adds_made,
            max_adds=settings.pyramid_max_adds,
        )
    )


def _trail_decide(
    *,
    position: PortfolioPosition,
    venue: Position | None,
    ticker: Ticker | None,
    settings: PortfolioSettings,
    result: TrailResult,
) -> None:
    """The dry run of ``_trail_one``: what a pass would do with this position, nothing written or sent."""
    symbol = position.symbol
    if venue is None:
        result.closed_elsewhere.append(symbol)
        result.why[symbol] = "the exchange shows no long: the next pass releases it"
        return
    if position.status == CLOSING:
        result.exited.append(symbol)
        result.why[symbol] = f"closing: exit attempt {position.exit_attempts + 1}"
        return
    price = ticker.last_price if ticker is not None and ticker.last_price > 0 else venue.mark_price
    if price is None or price <= 0:
        return
    high_water = rules.high_water(previous=position.high_water_price, price=price)
    stop = rules.trailing_stop_price(
        high_water_price=high_water, trailing_stop_pct=settings.trailing_stop_pct
    )
    if rules.trailing_stop_hit(
        price=price, high_water_price=high_water, trailing_stop_pct=settings.trailing_stop_pct
    ):
        result.exited.append(symbol)
        result.why[symbol] = (
            f"trailing_stop: price {decimal_text(price)} <= {decimal_text(stop.quantize(price))} "
            f"({decimal_text(settings.trailing_stop_pct)} % under the high {decimal_text(high_water)})"
        )
        return
    if _add_due(position=position, price=price, settings=settings, result=result):
        result.added.append(symbol)
        result.why[symbol] = (
            f"pyramid_step: price {decimal_text(price)} >= {decimal_text(settings.pyramid_step_pct)} % over "
            f"the last leg {decimal_text(position.last_add_price)} (add {position.adds_made + 1} of "
            f"{settings.pyramid_max_adds})"
        )


def _gone_release(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    ticker: Ticker | None,
    now: datetime,
    result: TrailResult,
) -> None:
    """The exchange shows no long where PM holds one: release it, saying who closed it."""
    symbol = position.symbol
    stop_price = exchange_stop_exit_price(gateway=gateway, symbol=symbol)
    reason = EXCHANGE_TRAILING_STOP if stop_price is not None else "closed_elsewhere"
    price = stop_price if stop_price is not None else (ticker.last_price if ticker else None)
    if not position_close(position=position, reason=reason, exit_price=price, now=now):
        return
    details = {"qty": decimal_text(position.qty), "was": position.status}
    if stop_price is not None:
        result.exchange_stopped.append(symbol)
        details.update(
            {
                "fill_price": decimal_text(stop_price),
                "high_water_price": decimal_text(position.high_water_price),
            }
        )
        exchange_stop_alert(symbol=symbol, qty=position.qty, price=stop_price)
    else:
        result.closed_elsewhere.append(symbol)
        details["last_price"] = decimal_text(price)
    journal_write(action="exit", outcome=TAKEN, reason_code=reason, symbol=symbol, details=details, now=now)


def _position_shrink(*, position: PortfolioPosition, size: Decimal, now: datetime) -> None:
    """The exchange holds less than PM's share (reduced by hand or by a risk action): PM owns what is left."""
    before = position.qty
    cost = position.cost_usdt * size / before if before > 0 else Decimal("0")
    if PortfolioPosition.objects.filter(pk=position.pk, qty=before).update(qty=size, cost_usdt=cost):
        position.qty, position.cost_usdt = size, cost
        journal_write(
            action="reduce",
            outcome=TAKEN,
            reason_code="reduced_elsewhere",
            symbol=position.symbol,
            details={"qty_before": decimal_text(before), "qty": decimal_text(size)},
            now=now,
        )
