"""Orders: validating and building an order body, sending it, settling an unknown outcome by
``orderLinkId``, closing a position, cancels, and reading orders back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from trading.bybit.http import RATE_LIMITED, BybitHttp
from trading.bybit.parsing import ms_from_datetime, parse_order
from trading.bybit.types import (
    CATEGORY,
    SETTLE_COIN,
    Order,
    OrderAck,
    OrderRef,
    OrderType,
    Position,
    TimeInForce,
)
from trading.errors import (
    ClockSkewError,
    DuplicateOrderLinkId,
    ExchangeUnreachable,
    GatewayError,
    MalformedAnswer,
    OrderOutcomeUnknown,
    OrderRefused,
    OrderTooSmall,
    RetryableError,
)
from trading.instruments import InstrumentCache
from trading.rules import Side
from trading.rules.order_body import order_body, plain
from trading.rules.order_link_id import is_valid_order_link_id
from trading.rules.rounding import (
    BELOW_MIN_NOTIONAL,
    BELOW_MIN_QTY,
    PRICE_OFF_TICK,
    check_order_size,
    check_price_tick,
    round_qty,
)

logger = logging.getLogger(__name__)

# Cancel answers that mean "nothing left to cancel": done, not a failure.
_CANCEL_DONE_CODES = frozenset({110001, 110008, 110010})
DUPLICATE_ORDER_LINK_ID = 110072


class OrderCalls(BybitHttp):
    """The order calls of ``BybitGateway``, which builds ``instruments`` and knows ``_position_idx``."""

    instruments: InstrumentCache

    def place_order(
        self,
        *,
        symbol: str,
        side: Side,
        qty: Decimal,
        order_link_id: str,
        order_type: OrderType = OrderType.MARKET,
        price: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        reduce_only: bool = False,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
        reference_price: Decimal | None = None,
    ) -> OrderAck:
        """Place one order; returns the acknowledgement (fills come later).

        ``qty`` in base coin, already a multiple of ``qtyStep`` (round with
        ``trading.rules.rounding.round_qty``); ``price`` (limit only) and
        TP/SL already multiples of ``tickSize``. ``reference_price`` is the
        price a market order was decided at, required for an opening market
        order so the minimum notional is checked here instead of at the venue.
        ``positionIdx`` follows the account's position mode.

        Raises ``OrderTooSmall``/``OrderRefused`` before sending, an
        ``OrderRejected`` subclass when the venue refuses, ``RetryableError``
        on 10006, ``OrderOutcomeUnknown`` when neither the answer nor a lookup
        settles it.
        """
        params = self._order_params(
            symbol=symbol,
            side=side,
            qty=qty,
            order_link_id=order_link_id,
            order_type=order_type,
            price=price,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            take_profit=take_profit,
            stop_loss=stop_loss,
            reference_price=reference_price,
        )
        return self._submit_order(params)

    def _order_params(
        self,
        *,
        symbol: str,
        side: Side,
        qty: Decimal,
        order_link_id: str,
        order_type: OrderType,
        price: Decimal | None,
        time_in_force: TimeInForce | None,
        reduce_only: bool,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        reference_price: Decimal | None,
    ) -> dict[str, Any]:
        """Validate an order against the instrument and build its request body (raises before sending)."""
        if not is_valid_order_link_id(order_link_id):
            raise ValueError(f"orderLinkId must be 1-36 characters of A-Z a-z 0-9 - _, got {order_link_id!r}")
        side = Side(side)
        instrument = self.instruments.get(symbol)
        is_market = order_type is OrderType.MARKET
        if is_market:
            if price is not None:
                raise ValueError("a market order takes no price; pass reference_price")
            if reference_price is None and not reduce_only:
                raise ValueError("an opening market order needs reference_price for the notional check")
        else:
            if price is None:
                raise ValueError("a limit order needs a price")
            if check_price_tick(price=price, tick_size=instrument.tick_size):
                raise OrderRefused(PRICE_OFF_TICK, f"{symbol} price {price} off tick {instrument.tick_size}")
        if reduce_only and (take_profit is not None or stop_loss is not None):
            raise ValueError("a reduce-only order cannot carry TP/SL")
        reason = check_order_size(
            qty=qty,
            price=reference_price if is_market else price,
            limits=instrument,
            is_market=is_market,
            reduce_only=reduce_only,
        )
        if reason is not None:
            if reason in (BELOW_MIN_QTY, BELOW_MIN_NOTIONAL):
                raise OrderTooSmall(reason, f"{symbol} {side} {qty}: {reason}")
            raise OrderRefused(reason, f"{symbol} {side} {qty}: {reason}")
        for name, value in (("takeProfit", take_profit), ("stopLoss", stop_loss)):
            if value is not None and check_price_tick(price=value, tick_size=instrument.tick_size):
                message = f"{symbol} {name} {value} off tick {instrument.tick_size}"
                raise OrderRefused(PRICE_OFF_TICK, message)
        return order_body(
            symbol=symbol,
            side=side,
            qty=qty,
            order_link_id=order_link_id,
            position_idx=self._position_idx(side=side, reduce_only=reduce_only),
            order_type=order_type.value,
            price=price,
            time_in_force=None if time_in_force is None else time_in_force.value,
            reduce_only=reduce_only,
            take_profit=take_profit,
            stop_loss=stop_loss,
        )

    def _submit_order(self, params: dict[str, Any]) -> OrderAck:
        """Send an order body; settle an unknown outcome by ``orderLinkId``, never by a blind resend."""
        symbol = params["symbol"]
        order_link_id = params["orderLinkId"]
        clock_resynced = False
        resent = False
        while True:
            try:
                result = self._call_once("place_order", params).get("result") or {}
                placed_id = result.get("orderId")
                if type(placed_id) is not str or not placed_id:
                    # Accepted without saying what: as good as no answer, so look it up below.
                    raise ExchangeUnreachable(None, "order answer without an orderId")
                return OrderAck(placed_id, order_link_id, symbol)
            except ClockSkewError:
                # Refused at the door (bad timestamp): nothing was placed, safe to resend once.
                if clock_resynced:
                    raise
                clock_resynced = True
                self.sync_clock()
                continue
            except GatewayError as error:
                if error.code == DUPLICATE_ORDER_LINK_ID:
                    existing = self._look_up_sent_order(params)
                    if existing is None:
                        # The id is taken but no order shows under it yet (Bybit creates
                        # orders asynchronously): don't guess, reconcile later.
                        raise OrderOutcomeUnknown(
                            f"orderLinkId {order_link_id} is taken but no order shows under it",
                            order_link_id=order_link_id,
                        ) from None
                    return existing
                if not isinstance(error, RetryableError) or error.code == RATE_LIMITED:
                    raise
                outcome_error = error
            # Timeout, connection failure, 10000/10016 or 5xx: the order may have landed.
            logger.warning(
                "order_outcome_unknown symbol=%s order_link_id=%s code=%s resent=%s",
                symbol,
                order_link_id,
                outcome_error.code,
                resent,
            )
            existing = self._look_up_sent_order(params)
            if existing is not None:
                return existing
            if resent:
                raise OrderOutcomeUnknown(
                    f"order {order_link_id} got no answer twice and is not on the venue",
                    order_link_id=order_link_id,
                )
            resent = True  # definitely absent: resend under the same id (110072 guards a late landing)

    def _look_up_sent_order(self, params: Mapping[str, Any]) -> OrderAck | None:
        """The order sent with ``params`` if the venue has it, checked to be the same order."""
        order_link_id = params["orderLinkId"]
        try:
            existing = self.get_order(order_link_id=order_link_id, symbol=params["symbol"])
        except GatewayError as lookup_error:
            raise OrderOutcomeUnknown(
                f"order {order_link_id}: lookup failed ({lookup_error})", order_link_id=order_link_id
            ) from None
        if existing is None:
            return None
        # A reduce-only qty is cut to the position size by the venue (and "0" means
        # close-all), so only an opening order's qty must match exactly.
        qty_must_match = not params.get("reduceOnly")
        if (
            existing.symbol != params["symbol"]
            or existing.side.value != params["side"]
            or (qty_must_match and existing.qty != Decimal(params["qty"]))
        ):
            raise DuplicateOrderLinkId(
                DUPLICATE_ORDER_LINK_ID,
                f"orderLinkId {order_link_id} belongs to another order "
                f"({existing.symbol} {existing.side} {existing.qty})",
            )
        logger.info(
            "order_recovered symbol=%s order_link_id=%s order_id=%s",
            existing.symbol,
            order_link_id,
            existing.order_id,
        )
        return OrderAck(existing.order_id, order_link_id, existing.symbol, recovered=True)

    def close_position(
        self, *, position: Position, order_link_id: str, with_position_idx: bool = True
    ) -> OrderAck:
        """Close ``position`` with a reduce-only market order on the opposite side.

        The qty is the position's exact size rounded down to ``qtyStep`` and
        the ``positionIdx`` is the position's own, so 110017 cannot come from
        our arithmetic, only from a position that changed since it was read.
        Dust below ``minOrderQty`` (which no ordinary order could close) is
        closed with Bybit's ``qty="0"`` + ``reduceOnly`` + ``closeOnTrigger``,
        which closes whatever the position holds.

        ``with_position_idx=False`` leaves ``positionIdx`` out (Bybit then takes the
        one-way index 0): Telegram /close's fallback retries so once after a 10001
        "position idx not match position mode", on an account whose mode was switched by hand.
        """
        return self._submit_order(
            self._close_params(position, order_link_id, with_position_idx=with_position_idx)
        )

    def _close_params(
        self, position: Position, order_link_id: str, *, with_position_idx: bool = True
    ) -> dict[str, Any]:
        """The body of the reduce-only market close of ``position`` (see ``close_position``)."""
        if not is_valid_order_link_id(order_link_id):
            raise ValueError(f"orderLinkId must be 1-36 characters of A-Z a-z 0-9 - _, got {order_link_id!r}")
        instrument = self.instruments.get(position.symbol)
        qty = round_qty(position.size, instrument.qty_step)
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": position.symbol,
            "side": position.side.opposite.value,
            "orderType": OrderType.MARKET.value,
            "qty": plain(qty),
            "orderLinkId": order_link_id,
            "positionIdx": position.position_idx,
            "reduceOnly": True,
        }
        if not with_position_idx:
            del params["positionIdx"]
        if check_order_size(qty=qty, price=None, limits=instrument, is_market=True, reduce_only=True):
            params["qty"] = "0"
            params["closeOnTrigger"] = True
        return params

    def cancel_order(
        self, *, symbol: str, order_link_id: str | None = None, order_id: str | None = None
    ) -> bool:
        """Cancel one order. True if this call cancelled it, False if it was already gone.

        "Already gone" is 110001/110008/110010: filled, cancelled or never there.
        """
        if not (order_link_id or order_id):
            raise ValueError("cancel_order needs order_link_id or order_id")
        params: dict[str, Any] = {"category": CATEGORY, "symbol": symbol}
        if order_id:
            params["orderId"] = order_id
        else:
            params["orderLinkId"] = order_link_id
        try:
            self._request("cancel_order", params)
        except GatewayError as error:
            if error.code in _CANCEL_DONE_CODES:
                return False
            raise
        return True

    def cancel_all_orders(self, *, symbol: str | None = None, ordinary_only: bool = False) -> list[OrderRef]:
        """Cancel every open order on USDT perps (or one ``symbol``); returns what was cancelled.

        Without ``ordinary_only`` this also cancels conditional and TP/SL
        orders (what panic wants); ``ordinary_only=True`` sends
        ``orderFilter=Order`` and keeps protective stops.
        """
        params: dict[str, Any] = {"category": CATEGORY}
        if symbol:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        if ordinary_only:
            params["orderFilter"] = "Order"
        try:
            result = self._request("cancel_all_orders", params).get("result") or {}
        except GatewayError as error:
            if error.code in _CANCEL_DONE_CODES:
                return []
            raise
        rows = result.get("list") or []
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise MalformedAnswer("cancel-all: result.list is not a list of orders")
        return [OrderRef(str(row.get("orderId") or ""), str(row.get("orderLinkId") or "")) for row in rows]

    def open_orders(self, *, symbol: str | None = None) -> list[Order]:
        """Open orders (all pages) on USDT perps or one symbol."""
        params: dict[str, Any] = {"category": CATEGORY, "limit": 50}
        if symbol:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        return [parse_order(row) for row in self._paged("get_open_orders", params)]

    def order_history(
        self, *, start: datetime, end: datetime | None = None, max_pages: int | None = 10
    ) -> list[Order]:
        """USDT-perp orders created from ``start`` to ``end`` (default now), newest first, from
        ``/v5/order/history`` (filled, cancelled, rejected; Bybit's window spans at most 7 days),
        at most ``max_pages`` pages of 50 (``None``: every page)."""
        params: dict[str, Any] = {
            "category": CATEGORY,
            "settleCoin": SETTLE_COIN,
            "limit": 50,
            "startTime": ms_from_datetime(start),
        }
        if end is not None:
            params["endTime"] = ms_from_datetime(end)
        return [parse_order(row) for row in self._paged("get_order_history", params, max_pages=max_pages)]

    def get_order(self, *, order_link_id: str, symbol: str | None = None) -> Order | None:
        """The order with this ``orderLinkId`` in any state, or ``None`` if the venue has never seen it.

        ``/v5/order/realtime`` ignores ``openOnly`` when given an
        ``orderLinkId``; after a Bybit restart closed orders live only in
        ``/v5/order/history``, so that is asked second.
        """
        params: dict[str, Any] = {"category": CATEGORY, "orderLinkId": order_link_id}
        if symbol:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        for method in ("get_open_orders", "get_order_history"):
            for row in self._rows(method, params):
                if row.get("orderLinkId") == order_link_id:
                    return parse_order(row)
        return None

    def get_order_by_id(self, *, order_id: str, symbol: str | None = None) -> Order | None:
        """The order with this Bybit ``orderId`` in any state, or ``None`` if the venue does not know it.

        Asks ``/v5/order/history`` first: the callers want orders that have filled (closed
        PnL names its closing order only by ``orderId``), and Bybit keeps filled orders
        there for two years; ``/v5/order/realtime`` second, for one still working.
        """
        params: dict[str, Any] = {"category": CATEGORY, "orderId": order_id}
        if symbol:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        for method in ("get_order_history", "get_open_orders"):
            for row in self._rows(method, params):
                if row.get("orderId") == order_id:
                    return parse_order(row)
        return None

    def _rows(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """One page of ``result.list``, each row an object (``MalformedAnswer`` otherwise)."""
        rows = (self._request(method, params).get("result") or {}).get("list") or []
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise MalformedAnswer(f"{method}: result.list is not a list of orders")
        return rows
