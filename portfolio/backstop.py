"""Portfolio momentum (PM): the exchange's own trailing stop on each PM position, the backstop
that protects it while no worker runs the trail step.

PM's trailing stop is checked once a minute by a Celery worker. Each PM long therefore also
carries Bybit's trailing stop (``trading-stop`` with ``trailingStop``, a price distance; see
``portfolio.rules.exchange_trail_distance``), a fifth wider than PM's own so that PM's exit
comes first while the workers run. Bybit runs it on its own price feed, keeps its size equal
to the position's (pyramid adds included) and cancels it when the position closes.

No ``activePrice`` is sent: a trailing stop with one does nothing until the price reaches it,
and the backstop must hold from the entry's first second. A trailing stop that is set again
restarts from the last price, so it is set again only on a new high (the trail step's own
check), where the two are the same.

The stop closes the whole position: it is kept only while the position is PM's alone (the
exchange's size equals PM's share), and removed when someone adds to it by hand. Once the
exchange shows the long gone and its last close was that stop, the trail step releases the
position (``exchange_trailing_stop``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from core.alerts import alert_send
from portfolio import rules
from portfolio.common import FAILED, TAKEN, decimal_text, failure_journal_due, journal_write
from portfolio.models import PortfolioPosition, PortfolioSettings
from trading.bybit import BybitGateway
from trading.errors import GatewayError
from trading.rules import Side

logger = logging.getLogger(__name__)

# Bybit's stopOrderType of the order its trailing stop fires.
TRAILING_STOP_ORDER = "TrailingStop"
EXCHANGE_TRAILING_STOP = "exchange_trailing_stop"  # the exit reason


def backstop_set(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    reference_price: Decimal,
    settings: PortfolioSettings,
    reason: str,
    now: datetime,
    distance_before: Decimal | None = None,
) -> bool:
    """Set (or move) Bybit's trailing stop on PM's long, trailing ``reference_price`` by the
    backstop's distance. Journals ``backstop`` taken with ``reason`` (``entry``, ``missing``,
    ``resized``), or failed (at most every few minutes per position); a failure is retried by
    the next trail pass. Returns whether the exchange now shows it."""
    symbol = position.symbol
    details = {
        "reference_price": decimal_text(reference_price),
        "trailing_stop_pct": decimal_text(settings.trailing_stop_pct),
        "factor": decimal_text(rules.EXCHANGE_TRAIL_FACTOR),
        "distance_before": decimal_text(distance_before),
    }
    try:
        tick_size = gateway.instrument(symbol).tick_size
        distance = rules.exchange_trail_distance(
            reference_price=reference_price, trailing_stop_pct=settings.trailing_stop_pct, tick_size=tick_size
        )
        details["distance"] = decimal_text(distance)
        changed = gateway.set_trading_stop(symbol=symbol, position_side=Side.BUY, trailing_stop=distance)
    except GatewayError as error:
        logger.warning(
            "pm_backstop_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__
        )
        if failure_journal_due(f"backstop:{position.pk}:{type(error).__name__}"):
            journal_write(
                action="backstop",
                outcome=FAILED,
                reason_code=type(error).__name__,
                symbol=symbol,
                details={**details, "code": error.code, "message": error.message},
                now=now,
            )
            alert_send(
                f"PM {symbol}: the exchange's trailing stop could not be set ({type(error).__name__}, "
                f"retCode {error.code}). PM's own trailing stop runs while the workers do; "
                "tried again every minute.",
                kind="order_refused",
            )
        return False
    if changed:
        journal_write(
            action="backstop", outcome=TAKEN, reason_code=reason, symbol=symbol, details=details, now=now
        )
        logger.info("pm_backstop_set symbol=%s distance=%s reason=%s", symbol, distance, reason)
    return True


def backstop_keep(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue_size: Decimal,
    venue_distance: Decimal | None,
    settings: PortfolioSettings,
    now: datetime,
) -> bool:
    """The trail step's check of an open PM long: set the backstop when the exchange shows none,
    or again from the high-water mark once its distance left the band (``rules.exchange_trail_due``).
    Returns whether it called the exchange."""
    if venue_size != position.qty:
        return _backstop_remove_shared(
            gateway=gateway, position=position, venue_size=venue_size, venue_distance=venue_distance, now=now
        )
    high_water = position.high_water_price or position.entry_price
    if high_water is None or not rules.exchange_trail_due(
        distance=venue_distance, high_water_price=high_water, trailing_stop_pct=settings.trailing_stop_pct
    ):
        return False
    return backstop_set(
        gateway=gateway,
        position=position,
        reference_price=high_water,
        settings=settings,
        reason="missing" if not venue_distance else "resized",
        now=now,
        distance_before=venue_distance,
    )


def _backstop_remove_shared(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue_size: Decimal,
    venue_distance: Decimal | None,
    now: datetime,
) -> bool:
    """Someone added to PM's long by hand: the exchange's stop would sell their share too, and PM
    only ever closes what it bought. Remove it; PM's own trail still guards PM's share."""
    if not venue_distance:
        return False
    symbol = position.symbol
    details = {"position_size": decimal_text(venue_size), "qty": decimal_text(position.qty)}
    try:
        gateway.set_trading_stop(symbol=symbol, position_side=Side.BUY, trailing_stop=Decimal("0"))
    except GatewayError as error:
        logger.warning(
            "pm_backstop_remove_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__
        )
        return False
    journal_write(
        action="backstop",
        outcome=TAKEN,
        reason_code="removed_position_shared",
        symbol=symbol,
        details=details,
        now=now,
    )
    logger.warning("pm_backstop_removed symbol=%s reason=position_shared", symbol)
    return True


def exchange_stop_exit_price(*, gateway: BybitGateway, symbol: str) -> Decimal | None:
    """The exit price when the symbol's newest close on the exchange was its trailing stop, else
    ``None`` (another close, or the exchange could not be read: the caller says ``closed_elsewhere``)."""
    try:
        closes = gateway.closed_pnl(symbol=symbol, limit=1, max_pages=1)
        if not closes:
            return None
        order = gateway.get_order_by_id(order_id=closes[0].order_id, symbol=symbol)
    except GatewayError as error:
        logger.warning(
            "pm_close_lookup_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__
        )
        return None
    if order is None or order.stop_order_type != TRAILING_STOP_ORDER:
        return None
    return closes[0].avg_exit_price


def exchange_stop_alert(*, symbol: str, qty: Decimal, price: Decimal) -> None:
    alert_send(
        f"PM exit {symbol}: the exchange's trailing stop sold {decimal_text(qty)} @ {decimal_text(price)} "
        "(no worker had exited it first).",
        kind="exit",
    )
