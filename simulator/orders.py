"""Order requests: place, amend and cancel, validated like Bybit (a `SimError` with its retCode).

A part of `Exchange` (exchange.py); a placed order meets the market in matching.py.
"""

import uuid
from decimal import Decimal

from . import params as p
from .errors import (
    DUPLICATE_ORDER_LINK_ID,
    NOTIONAL_TOO_LOW,
    ORDER_NOT_FOUND,
    PARAMS_ERROR,
    REDUCE_ONLY_NOT_SATISFIED,
    TOO_MANY_ACTIVE_ORDERS,
    SimError,
    error,
)
from .instruments import Instrument
from .market import wall_ms
from .numbers import ZERO, is_multiple
from .rules import BUY, SELL
from .state import (
    CANCELLED,
    DEACTIVATED,
    LIMIT,
    MARKET,
    MAX_ACTIVE_ORDERS,
    OPEN_STATUSES,
    REJECTED,
    TIME_IN_FORCE,
    TRIGGER_BY,
    UNTRIGGERED,
    Order,
    Position,
)


class OrderRequests:
    """`Exchange`'s order requests; the state and the other parts they use live on the same object."""

    # -- placing ---------------------------------------------------------------------

    def record_refused(self, request: dict, code: int, received_ns: int) -> None:
        """An order request refused before it became an order (auth, rate limit, fault)."""
        self.account.received.append(_refused_order(request, code, received_ns))

    def place_order(self, request: dict, received_ns: int, now_ms: int | None = None) -> Order:
        """Validate and accept one order; fill it at once if it is marketable."""
        now_ms = now_ms or wall_ms()
        try:
            order = self._build_order(request, received_ns, now_ms)
        except SimError as refusal:
            self.record_refused(request, refusal.code, received_ns)
            raise
        account = self.account
        account.received.append(order)
        account.orders[order.order_id] = order
        if order.order_link_id:
            account.by_link_id[order.order_link_id] = order
        self._open(order.symbol)[order.order_id] = order
        if order.status == UNTRIGGERED:
            self._emit_order(order)
            return order
        self._activate(order, now_ms)
        return order

    def _build_order(self, request: dict, received_ns: int, now_ms: int) -> Order:
        p.linear_category(request)
        inst = self.instrument(request)
        side = p.choice(request, "side", (BUY, SELL), required=True)
        order_type = p.choice(request, "orderType", (MARKET, LIMIT), required=True)
        qty = p.decimal(request, "qty", required=True)
        price = p.decimal(request, "price")
        time_in_force = p.choice(request, "timeInForce", TIME_IN_FORCE, default="GTC")
        reduce_only = p.boolean(request, "reduceOnly")
        close_on_trigger = p.boolean(request, "closeOnTrigger")
        link_id = p.text(request, "orderLinkId")
        trigger_price = p.decimal(request, "triggerPrice")
        take_profit = p.decimal(request, "takeProfit")
        stop_loss = p.decimal(request, "stopLoss")
        tpsl_mode = p.choice(request, "tpslMode", ("Full", "Partial"), default="Full")
        symbol = inst.symbol
        if order_type == MARKET:
            time_in_force = "IOC"  # Bybit: market orders are always IOC
            price = ZERO
        elif price is None:
            raise SimError(PARAMS_ERROR, "params error: price is required for a Limit order")
        elif price <= 0 or not is_multiple(price, inst.tick_size):
            raise SimError(
                PARAMS_ERROR,
                f"params error: price {price} must be a positive multiple of tickSize {inst.tick_size}",
            )
        if link_id:
            if not p.ORDER_LINK_ID.match(link_id):
                raise SimError(
                    PARAMS_ERROR, "params error: orderLinkId must be 1-36 characters of A-Z a-z 0-9 - _"
                )
            if link_id in self.account.by_link_id:
                raise error(DUPLICATE_ORDER_LINK_ID)
        position_idx = self._position_idx(request, symbol)
        if (reduce_only or close_on_trigger) and (take_profit or stop_loss):
            raise SimError(
                PARAMS_ERROR, "params error: a reduce-only order cannot carry take-profit or stop-loss"
            )
        if tpsl_mode == "Partial" and (take_profit or stop_loss):
            raise SimError(PARAMS_ERROR, "params error: the simulator supports tpslMode Full only")
        last = self.market.last(symbol)
        position = self.position(symbol, position_idx)
        reducing = reduce_only or close_on_trigger or _hedge_close(position_idx, side)
        if qty == 0 and reduce_only and close_on_trigger:
            # Bybit: qty "0" with reduceOnly+closeOnTrigger closes the position up to the max qty.
            qty = min(abs(position.size), inst.max_market_qty if order_type == MARKET else inst.max_qty)
            if qty == 0:
                raise error(REDUCE_ONLY_NOT_SATISFIED)
        _check_qty(inst, qty, order_type, reducing)
        if len(self._open(symbol)) >= MAX_ACTIVE_ORDERS:
            raise error(TOO_MANY_ACTIVE_ORDERS)
        order = Order(
            order_id=str(uuid.uuid4()),
            order_link_id=link_id,
            symbol=symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            time_in_force=time_in_force,
            position_idx=position_idx,
            reduce_only=reducing,
            close_on_trigger=close_on_trigger,
            created_ms=now_ms,
            updated_ms=now_ms,
            received_ns=received_ns,
            take_profit=take_profit or ZERO,
            stop_loss=stop_loss or ZERO,
            tp_trigger_by="LastPrice" if take_profit else "",
            sl_trigger_by="LastPrice" if stop_loss else "",
            tpsl_mode="Full" if (take_profit or stop_loss) else "",
            last_price_on_created=last,
        )
        if trigger_price is not None:
            direction = p.integer(request, "triggerDirection")
            if direction not in (1, 2):
                raise SimError(PARAMS_ERROR, "params error: triggerDirection must be 1 (rise) or 2 (fall)")
            if direction == 1 and trigger_price <= last:
                raise SimError(
                    110092, f"expect Rising, but trigger_price[{trigger_price}] <= current[{last}]??LastPrice"
                )
            if direction == 2 and trigger_price >= last:
                raise SimError(
                    110093,
                    f"expect Falling, but trigger_price[{trigger_price}] >= current[{last}]??LastPrice",
                )
            order.stop_order_type = "Stop"
            order.trigger_price = trigger_price
            order.trigger_direction = direction
            order.trigger_by = p.choice(request, "triggerBy", TRIGGER_BY, default="LastPrice")
            order.status = UNTRIGGERED
            order.create_type = "CreateByStopOrder"
        if reducing:
            self._clip_reduce_only(order, position)
        reference_price = price if order_type == LIMIT else last
        if not reducing and qty * reference_price < inst.min_notional:
            # Closing orders are exempt from the minimum order value, so dust can always be closed.
            raise error(NOTIONAL_TOO_LOW, minimum=inst.min_notional)
        if not reducing and order.status != UNTRIGGERED:
            self._check_margin(order, position, reference_price)
        return order

    def _position_idx(self, request: dict, symbol: str) -> int:
        idx = p.integer(request, "positionIdx")
        hedge = symbol in self.account.hedge_symbols
        if idx is None:
            if hedge:
                raise SimError(PARAMS_ERROR, "position idx not match position mode")
            return 0
        if (hedge and idx not in (1, 2)) or (not hedge and idx != 0):
            raise SimError(PARAMS_ERROR, "position idx not match position mode")
        return idx

    def _clip_reduce_only(self, order: Order, position: Position) -> None:
        """Bybit: reduce-only must shrink the position; a larger qty is cut to the position size."""
        size = position.size
        closes = (size > 0 and order.side == SELL) or (size < 0 and order.side == BUY)
        if not closes:
            raise error(REDUCE_ONLY_NOT_SATISFIED)
        if order.qty > abs(size):
            order.qty = abs(size)

    # -- cancelling and amending -----------------------------------------------------

    def find_order(self, request: dict) -> Order:
        order_id = p.text(request, "orderId")
        link_id = p.text(request, "orderLinkId")
        if not order_id and not link_id:
            raise SimError(PARAMS_ERROR, "params error: orderId or orderLinkId is required")
        order = self.account.orders.get(order_id) if order_id else self.account.by_link_id.get(link_id)
        return order

    def cancel_order(self, request: dict) -> Order:
        p.linear_category(request)
        inst = self.instrument(request)
        order = self.find_order(request)
        if order is None or order.symbol != inst.symbol or order.status not in OPEN_STATUSES:
            raise error(ORDER_NOT_FOUND)
        now = wall_ms()
        self._cancel(order, now)
        return order

    def _cancel(self, order: Order, now_ms: int) -> None:
        if order.is_conditional:
            self._close_order(order, DEACTIVATED, now_ms, cancel_type="CancelByUser")
            if order.follows_position:
                position = self.position(order.symbol, order.position_idx)
                if position.tp_order is order:
                    position.tp_order, position.take_profit = None, ZERO
                if position.sl_order is order:
                    position.sl_order, position.stop_loss = None, ZERO
                self._emit_position(order.symbol, order.position_idx)
        else:
            self._close_order(order, CANCELLED, now_ms, cancel_type="CancelByUser")
            self._emit_position(order.symbol, order.position_idx)
        self.outbox.append(("wallet", None))

    def cancel_all(self, request: dict) -> list[Order]:
        p.linear_category(request)
        symbol = p.text(request, "symbol")
        base_coin = p.text(request, "baseCoin")
        settle_coin = p.text(request, "settleCoin")
        order_filter = p.choice(request, "orderFilter", ("Order", "StopOrder", "OpenOrder"))
        stop_order_type = p.text(request, "stopOrderType")
        if symbol:
            self.instrument(request)
            symbols = [symbol]
        elif base_coin:
            symbols = [s for s, inst in self.instruments.items() if inst.base_coin == base_coin]
        elif settle_coin:
            if settle_coin != "USDT":
                raise SimError(PARAMS_ERROR, "params error: the simulator only settles in USDT")
            symbols = list(self.instruments)
        else:
            raise SimError(PARAMS_ERROR, "params error: symbol, baseCoin or settleCoin is required")
        return self._cancel_many(symbols, order_filter, stop_order_type, wall_ms())

    def _cancel_many(
        self, symbols, order_filter: str, stop_order_type: str, now_ms: int, cancel_type: str = "CancelByUser"
    ) -> list[Order]:
        cancelled = []
        for symbol in symbols:
            for order in list(self._open(symbol).values()):
                if order_filter in ("Order", "OpenOrder") and order.is_conditional:
                    continue
                if order_filter == "StopOrder":
                    if not order.is_conditional:
                        continue
                    if stop_order_type == "Stop" and order.stop_order_type != "Stop":
                        continue
                if order.order_id not in self._open(symbol):
                    continue
                self._cancel(order, now_ms)
                if cancel_type != "CancelByUser":
                    order.cancel_type = cancel_type
                cancelled.append(order)
                if len(cancelled) == MAX_ACTIVE_ORDERS:
                    return cancelled  # Bybit cancels at most 500 futures orders per call
        return cancelled

    def cancel_all_by_dcp(self) -> list[Order]:
        """Disconnected-cancel-all fired: every open derivatives order goes, TP/SL included."""
        return self._cancel_many(list(self.account.open_orders), "", "", wall_ms(), "CancelByDCP")

    def amend_order(self, request: dict) -> Order:
        p.linear_category(request)
        inst = self.instrument(request)
        order = self.find_order(request)
        if order is None or order.symbol != inst.symbol or order.status not in OPEN_STATUSES:
            raise error(ORDER_NOT_FOUND)
        qty = p.decimal(request, "qty")
        price = p.decimal(request, "price")
        trigger_price = p.decimal(request, "triggerPrice")
        if qty is None and price is None and trigger_price is None:
            raise SimError(34040, "not modified")
        if qty is not None:
            _check_qty(inst, qty, order.order_type)
            if qty <= order.cum_qty:
                raise SimError(PARAMS_ERROR, "params error: qty must exceed the filled qty")
        if price is not None and order.order_type == LIMIT:
            if price <= 0 or not is_multiple(price, inst.tick_size):
                raise SimError(
                    PARAMS_ERROR, f"params error: price must be a multiple of tickSize {inst.tick_size}"
                )
            order.price = price
        if qty is not None:
            order.qty = qty
        if trigger_price is not None and order.is_conditional:
            order.trigger_price = trigger_price
        now = wall_ms()
        order.updated_ms = now
        self._emit_order(order)
        self.on_price(order.symbol, now)
        return order


def _check_qty(inst: Instrument, qty: Decimal, order_type: str, reducing: bool = False) -> None:
    if qty <= 0:
        raise SimError(PARAMS_ERROR, f"params error: qty must be positive, got {qty}")
    if not is_multiple(qty, inst.qty_step):
        raise SimError(PARAMS_ERROR, f"params error: qty {qty} is not a multiple of qtyStep {inst.qty_step}")
    if qty < inst.min_qty:
        raise SimError(PARAMS_ERROR, f"params error: qty {qty} is below minOrderQty {inst.min_qty}")
    maximum = inst.max_market_qty if order_type == MARKET else inst.max_qty
    # Bybit splits a reduce-only order above the max qty itself, so only opening orders are capped.
    if qty > maximum and not reducing:
        name = "maxMktOrderQty" if order_type == MARKET else "maxOrderQty"
        raise SimError(PARAMS_ERROR, f"params error: qty {qty} is above {name} {maximum}")


def _hedge_close(idx: int, side: str) -> bool:
    """In hedge mode a Sell on the long side (1) or a Buy on the short side (2) closes."""
    return (idx == 1 and side == SELL) or (idx == 2 and side == BUY)


def _refused_order(request: dict, code: int, received_ns: int) -> Order:
    """A record of a refused request for `/sim/state`, from whatever fields it had."""

    def field_text(name):
        value = request.get(name) if isinstance(request, dict) else None
        return value if isinstance(value, str) else ""

    def field_decimal(name):
        try:
            return Decimal(field_text(name) or "0")
        except ArithmeticError:
            return ZERO

    order = Order(
        order_id="",
        order_link_id=field_text("orderLinkId"),
        symbol=field_text("symbol"),
        side=field_text("side"),
        order_type=field_text("orderType"),
        qty=field_decimal("qty"),
        price=field_decimal("price"),
        time_in_force=field_text("timeInForce"),
        position_idx=0,
        reduce_only=bool(request.get("reduceOnly")) if isinstance(request, dict) else False,
        close_on_trigger=False,
        created_ms=received_ns // 1_000_000,
        received_ns=received_ns,
        status=REJECTED,
        reject_code=code,
    )
    return order
