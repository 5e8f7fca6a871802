"""Trailing stops on a position: ``trading-stop`` with ``trailingStop`` (a price distance) and
``activePrice``, as Bybit runs them (docs/v5/position/trading-stop.mdx; the help centre's
"Trailing Stop" article for how the trigger moves).

A part of `Exchange` (exchange.py). The stop is one conditional market close that follows the
position's size (like a Full-mode TP/SL: ``stopOrderType`` ``TrailingStop``, ``createType``
``CreateByTrailingStop``). Without ``activePrice`` it trails at once from the last price;
with one it waits until the last price reaches it and starts from there. From then on the
trigger of a long's stop is the best last price since less the distance (a short's: the
lowest plus the distance), moved by the price clock (`on_price`), never back.

Not documented, so chosen here: setting a new distance replaces the stop and starts it again
from the last price (or the new ``activePrice``); an ``activePrice`` the price has already
passed is refused like a take-profit on the wrong side.
"""

from decimal import Decimal

from . import rules
from .errors import PARAMS_ERROR, SimError
from .numbers import ZERO, is_multiple
from .state import DEACTIVATED, TRAILING_STOP, UNTRIGGERED, Order, Position


def trail_trigger(closing_side: str, best: Decimal, distance: Decimal) -> Decimal:
    """Where a trailing stop fires: below the best price for a long's close (a Sell), above for a short's."""
    return best - distance if closing_side == rules.SELL else best + distance


def trailing_stop_validation_error(
    position_side: str, last: Decimal, distance: Decimal, active_price: Decimal | None, tick: Decimal
) -> str | None:
    if distance < 0 or not is_multiple(distance, tick):
        return f"params error: trailingStop must be a multiple of tickSize {tick}"
    if position_side == rules.BUY and distance and distance >= last:
        return f"TrailingStop:{distance} set for Buy position should be lower than base_price:{last}"
    if active_price:
        if active_price < 0 or not is_multiple(active_price, tick):
            return f"params error: activePrice must be a multiple of tickSize {tick}"
        if position_side == rules.BUY and active_price <= last:
            return f"ActivePrice:{active_price} set for Buy position should be higher than base_price:{last}"
        if position_side == rules.SELL and active_price >= last:
            return f"ActivePrice:{active_price} set for Sell position should be lower than base_price:{last}"
    return None


class TrailingStops:
    """`Exchange`'s trailing stops; the state and the other parts they use live on the same object."""

    def _set_trailing_stop(
        self, position: Position, distance: Decimal, active_price: Decimal | None, now_ms: int
    ) -> None:
        """Replace the position's trailing stop (``distance`` 0 removes it)."""
        self._clear_trailing_stop(position, now_ms, cancel_type="CancelByUser")
        position.trailing_stop = distance
        position.active_price = active_price or ZERO
        if distance == 0:
            position.active_price = ZERO
        else:
            last = self.market.last(position.symbol)
            closing_side = rules.opposite(position.side)
            armed = not active_price
            order = self._position_stop_add(
                position,
                kind=TRAILING_STOP,
                trigger_price=trail_trigger(closing_side, last if armed else active_price, distance),
                trigger_direction=2 if closing_side == rules.SELL else 1,
                now_ms=now_ms,
                trail_distance=distance,
                trail_active_price=active_price or ZERO,
                trail_armed=armed,
            )
            position.ts_order = order
        position.updated_ms = now_ms
        position.seq = self._next_seq()

    def _clear_trailing_stop(self, position: Position, now_ms: int, *, cancel_type: str) -> None:
        order = position.ts_order
        if order is not None and order.status == UNTRIGGERED:
            self._close_order(order, DEACTIVATED, now_ms, cancel_type=cancel_type)
        position.ts_order = None
        position.trailing_stop = position.active_price = ZERO

    def _trail_follow(self, order: Order, last: Decimal) -> bool:
        """Move a trailing stop's trigger with the last price; False while it waits for its activePrice."""
        selling = order.side == rules.SELL
        if not order.trail_armed:
            reached = last >= order.trail_active_price if selling else last <= order.trail_active_price
            if not reached:
                return False
            order.trail_armed = True
        follow = trail_trigger(order.side, last, order.trail_distance)
        if (selling and follow > order.trigger_price) or (not selling and follow < order.trigger_price):
            order.trigger_price = follow
        return True

    def _trading_stop_trailing(
        self, position: Position, distance: Decimal | None, active_price: Decimal | None, tick: Decimal
    ) -> bool:
        """Check a request's trailingStop/activePrice; True when it changes the position's stop."""
        if distance is None:
            return False
        problem = trailing_stop_validation_error(
            position.side, self.market.last(position.symbol), distance, active_price, tick
        )
        if problem:
            raise SimError(PARAMS_ERROR, problem)
        return distance != position.trailing_stop or (active_price or ZERO) != position.active_price
