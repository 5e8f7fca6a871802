"""The venue: one unified USDT account trading linear perpetuals against the market's price.

No I/O here. Handlers call these methods with parsed-enough request dicts; the
methods validate like Bybit (raising `SimError` with Bybit's retCode), change state,
and append what changed to `outbox` so the server can push it on the private streams.
Order fills happen inside the call (market orders, marketable limits) or inside
`on_price` (resting limits, TP/SL and conditional triggers).
"""

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from . import params as p
from . import rules
from .errors import (
    DUPLICATE_ORDER_LINK_ID,
    INSUFFICIENT_AVAILABLE,
    LEVERAGE_NOT_MODIFIED,
    MODE_NOT_MODIFIED,
    NOTIONAL_TOO_LOW,
    ORDER_NOT_FOUND,
    PARAMS_ERROR,
    POSITION_EXISTS,
    REDUCE_ONLY_NOT_SATISFIED,
    TOO_MANY_ACTIVE_ORDERS,
    TPSL_NOT_MODIFIED,
    SimError,
    error,
)
from .instruments import Instrument
from .market import Market, wall_ms
from .numbers import ONE, ZERO, is_multiple
from .rules import BUY, SELL

# Order statuses (docs/v5/enum.mdx#orderstatus)
NEW = "New"
PARTIALLY_FILLED = "PartiallyFilled"
FILLED = "Filled"
CANCELLED = "Cancelled"
REJECTED = "Rejected"
UNTRIGGERED = "Untriggered"
TRIGGERED = "Triggered"
DEACTIVATED = "Deactivated"
OPEN_STATUSES = frozenset((NEW, PARTIALLY_FILLED, UNTRIGGERED))

MARKET = "Market"
LIMIT = "Limit"
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly")
TRIGGER_BY = ("LastPrice", "MarkPrice", "IndexPrice")
TAKE_PROFIT = "TakeProfit"
STOP_LOSS = "StopLoss"
MAX_ACTIVE_ORDERS = 500
ONE_WAY = 0
HEDGE = 3
CLOSED_ORDERS_KEPT = 500


@dataclass
class VenueConfig:
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.00055")
    slippage: Decimal = Decimal("0.0001")  # 1 basis point against the taker
    default_leverage: Decimal = Decimal("10")
    equity: Decimal = Decimal("10000")


@dataclass(slots=True, eq=False)
class Order:
    order_id: str
    order_link_id: str
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal
    time_in_force: str
    position_idx: int
    reduce_only: bool
    close_on_trigger: bool
    created_ms: int
    received_ns: int
    status: str = NEW
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    closed_pnl: Decimal = ZERO
    updated_ms: int = 0
    stop_order_type: str = ""
    trigger_price: Decimal = ZERO
    trigger_direction: int = 0
    trigger_by: str = ""
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    tp_trigger_by: str = ""
    sl_trigger_by: str = ""
    tpsl_mode: str = ""
    create_type: str = "CreateByUser"
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    last_price_on_created: Decimal = ZERO
    reject_code: int | None = None
    # Full-mode TP/SL orders follow the position's size, so their qty shows "0".
    follows_position: bool = False

    @property
    def leaves_qty(self) -> Decimal:
        if self.status not in OPEN_STATUSES:
            return ZERO
        return self.qty - self.cum_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_value / self.cum_qty if self.cum_qty else ZERO

    @property
    def is_conditional(self) -> bool:
        return self.stop_order_type != ""


@dataclass(slots=True, eq=False)
class Position:
    symbol: str
    position_idx: int
    created_ms: int
    updated_ms: int
    size: Decimal = ZERO  # signed: long positive, short negative
    avg_price: Decimal = ZERO
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    tp_trigger_by: str = "LastPrice"
    sl_trigger_by: str = "LastPrice"
    cur_realised: Decimal = ZERO
    cum_realised: Decimal = ZERO
    open_fee: Decimal = ZERO  # fees paid to open what is held, shared out on closes
    seq: int = 0
    tp_order: Order | None = None
    sl_order: Order | None = None

    @property
    def side(self) -> str:
        if self.size > 0:
            return BUY
        if self.size < 0:
            return SELL
        return ""

    @property
    def value(self) -> Decimal:
        return abs(self.size) * self.avg_price


@dataclass(slots=True)
class Execution:
    exec_id: str
    order: Order
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_rate: Decimal
    is_maker: bool
    closed_size: Decimal
    exec_pnl: Decimal
    time_ms: int
    mark_price: Decimal
    leaves_qty: Decimal
    seq: int


@dataclass(slots=True)
class ClosedPnl:
    order: Order
    symbol: str
    side: str  # the closing order's side
    qty: Decimal  # the closing order's qty
    closed_size: Decimal
    avg_entry: Decimal
    avg_exit: Decimal
    closed_pnl: Decimal
    leverage: Decimal
    time_ms: int


@dataclass
class WalletTotals:
    wallet_balance: Decimal
    unrealised: Decimal
    margin_balance: Decimal
    position_im: Decimal
    order_im: Decimal
    maintenance: Decimal
    available: Decimal
    cum_realised: Decimal

    @property
    def initial_margin(self) -> Decimal:
        return self.position_im + self.order_im

    @property
    def im_rate(self) -> Decimal:
        return self.initial_margin / self.margin_balance if self.margin_balance > 0 else ZERO

    @property
    def mm_rate(self) -> Decimal:
        return self.maintenance / self.margin_balance if self.margin_balance > 0 else ZERO


@dataclass
class Account:
    wallet_balance: Decimal
    cum_realised: Decimal = ZERO
    positions: dict = field(default_factory=dict)  # (symbol, idx) -> Position
    leverage: dict = field(default_factory=dict)  # symbol -> Decimal
    hedge_symbols: set = field(default_factory=set)
    orders: dict = field(default_factory=dict)  # order_id -> Order
    open_orders: dict = field(default_factory=dict)  # symbol -> {order_id: Order}
    by_link_id: dict = field(default_factory=dict)  # orderLinkId -> Order
    executions: list = field(default_factory=list)
    closed_pnls: list = field(default_factory=list)
    received: list = field(default_factory=list)  # every order request, in arrival order
    dcp_windows: dict = field(default_factory=dict)  # product -> seconds


class Exchange:
    def __init__(self, instruments: dict[str, Instrument], market: Market, config: VenueConfig) -> None:
        self.instruments = instruments
        self.market = market
        self.config = config
        self.account = Account(wallet_balance=config.equity)
        self.outbox: list[tuple[str, object]] = []
        self._seq = 0

    # -- plumbing --------------------------------------------------------------------

    def reset(self, equity: Decimal) -> None:
        self.config.equity = equity
        self.account = Account(wallet_balance=equity)
        self.outbox.clear()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def instrument(self, params: dict) -> Instrument:
        symbol = p.text(params, "symbol", required=True)
        inst = self.instruments.get(symbol)
        if inst is None:
            raise SimError(PARAMS_ERROR, f"params error: symbol invalid: {symbol!r}")
        return inst

    def leverage(self, symbol: str) -> Decimal:
        return self.account.leverage.get(symbol, self.config.default_leverage)

    def position(self, symbol: str, idx: int) -> Position:
        key = (symbol, idx)
        position = self.account.positions.get(key)
        if position is None:
            now = wall_ms()
            position = Position(symbol, idx, now, now)
            self.account.positions[key] = position
        return position

    def position_indexes(self, symbol: str) -> tuple[int, ...]:
        return (1, 2) if symbol in self.account.hedge_symbols else (0,)

    def _open(self, symbol: str) -> dict:
        return self.account.open_orders.setdefault(symbol, {})

    def iter_open_orders(self):
        for orders in self.account.open_orders.values():
            yield from orders.values()

    # -- wallet ----------------------------------------------------------------------

    def totals(self) -> WalletTotals:
        unrealised = position_im = maintenance = order_im = ZERO
        for position in self.account.positions.values():
            if position.size == 0:
                continue
            mark = self.market.last(position.symbol)
            unrealised += rules.unrealised_pnl(position.size, position.avg_price, mark)
            value = position.value
            position_im += value / self.leverage(position.symbol)
            maintenance += value * self.instruments[position.symbol].maintenance_rate
        for order in self.iter_open_orders():
            if order.reduce_only or order.is_conditional or order.order_type != LIMIT:
                continue
            order_im += order.leaves_qty * order.price / self.leverage(order.symbol)
        wallet = self.account.wallet_balance
        margin_balance = wallet + unrealised
        available = max(ZERO, margin_balance - position_im - order_im)
        return WalletTotals(
            wallet,
            unrealised,
            margin_balance,
            position_im,
            order_im,
            maintenance,
            available,
            self.account.cum_realised,
        )

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

    def _check_margin(self, order: Order, position: Position, reference_price: Decimal) -> None:
        if order.order_type == MARKET:
            reference_price = rules.taker_price(
                order.side, reference_price, self.config.slippage, self.instruments[order.symbol].tick_size
            )
        opening = rules.opening_qty(position.size, order.side, order.qty)
        if opening == 0:
            return
        value = opening * reference_price
        required = value / self.leverage(order.symbol) + value * self.config.taker_fee
        if required > self.totals().available:
            raise error(INSUFFICIENT_AVAILABLE)

    def _activate(self, order: Order, now_ms: int) -> None:
        """A new (or just triggered) order meets the market."""
        inst = self.instruments[order.symbol]
        last = self.market.last(order.symbol)
        buy_price = rules.taker_price(BUY, last, self.config.slippage, inst.tick_size)
        sell_price = rules.taker_price(SELL, last, self.config.slippage, inst.tick_size)
        taker = buy_price if order.side == BUY else sell_price
        if order.order_type == MARKET:
            self._fill(order, order.qty, taker, is_maker=False, now_ms=now_ms)
            return
        marketable = rules.is_marketable(order.side, order.price, sell_price, buy_price)
        if marketable and order.time_in_force == "PostOnly":
            self._close_order(order, CANCELLED, now_ms, reject_reason="EC_PostOnlyWillTakeLiquidity")
            return
        if marketable:
            # The book is deep enough for any order: a marketable limit fills whole at the
            # taker price (or better than its limit), so FOK and IOC never partly fill.
            self._fill(order, order.qty, taker, is_maker=False, now_ms=now_ms)
            return
        if order.time_in_force in ("IOC", "FOK"):
            self._close_order(order, CANCELLED, now_ms, reject_reason="EC_NoImmediateQtyToFill")
            return
        self._emit_order(order)
        self._emit_position(order.symbol, order.position_idx)
        self.outbox.append(("wallet", None))

    # -- fills -----------------------------------------------------------------------

    def _fill(self, order: Order, qty: Decimal, price: Decimal, *, is_maker: bool, now_ms: int) -> None:
        account = self.account
        position = self.position(order.symbol, order.position_idx)
        if order.reduce_only:
            qty = min(qty, abs(position.size))
            if qty == 0:
                self._close_order(order, CANCELLED, now_ms, cancel_type="CancelByReduceOnly")
                return
        fee_rate = self.config.maker_fee if is_maker else self.config.taker_fee
        value = qty * price
        fee = value * fee_rate
        was_flat = position.size == 0
        result = rules.apply_fill(position.size, position.avg_price, order.side, qty, price)
        closing_fee = fee * result.closed_qty / qty
        opening_fee = fee - closing_fee
        entry_fee_share = ZERO
        if result.closed_qty:
            entry_fee_share = position.open_fee * result.closed_qty / abs(position.size)
            position.open_fee -= entry_fee_share
        pnl = result.realised - fee
        account.wallet_balance += pnl
        account.cum_realised += pnl
        position.cum_realised += pnl
        flipped = result.size != 0 and not was_flat and (result.size > 0) != (position.size > 0)
        if was_flat or flipped:
            # A new holding starts: Bybit's curRealisedPnl counts from its opening fill.
            position.cur_realised = -opening_fee
            position.open_fee = opening_fee
            if was_flat:
                position.created_ms = now_ms
        else:
            position.cur_realised += pnl
            position.open_fee += opening_fee
        avg_before = position.avg_price
        position.size = result.size
        position.avg_price = result.avg_price
        position.updated_ms = now_ms
        position.seq = self._next_seq()

        order.cum_qty += qty
        order.cum_value += value
        order.cum_fee += fee
        order.updated_ms = now_ms
        order.closed_pnl += result.realised - closing_fee - entry_fee_share if result.closed_qty else ZERO
        if order.follows_position or order.cum_qty >= order.qty:
            order.qty = max(order.qty, order.cum_qty)
            order.status = FILLED
            self._open(order.symbol).pop(order.order_id, None)
        else:
            order.status = PARTIALLY_FILLED
        execution = Execution(
            exec_id=str(uuid.uuid4()),
            order=order,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            fee=fee,
            fee_rate=fee_rate,
            is_maker=is_maker,
            closed_size=result.closed_qty,
            exec_pnl=result.realised,
            time_ms=now_ms,
            mark_price=self.market.last(order.symbol),
            leaves_qty=order.leaves_qty,
            seq=self._next_seq(),
        )
        account.executions.append(execution)
        if result.closed_qty:
            account.closed_pnls.append(
                ClosedPnl(
                    order=order,
                    symbol=order.symbol,
                    side=order.side,
                    qty=order.qty,
                    closed_size=result.closed_qty,
                    avg_entry=avg_before,
                    avg_exit=price,
                    closed_pnl=result.realised - closing_fee - entry_fee_share,
                    leverage=self.leverage(order.symbol),
                    time_ms=now_ms,
                )
            )
        self._emit_order(order)
        self.outbox.append(("execution", execution))
        if position.size == 0 or (result.closed_qty and result.closed_qty < qty):
            # Flat (or flipped): the old position's TP/SL and resting closes no longer apply.
            self._clear_tp_sl(position, now_ms)
            if position.size == 0:
                self._cancel_reduce_only(order.symbol, order.position_idx, now_ms)
        if position.size != 0 and result.closed_qty == 0:
            # TP/SL attached to an opening order move onto the position once it fills.
            take_profit = order.take_profit if order.take_profit not in (ZERO, position.take_profit) else None
            stop_loss = order.stop_loss if order.stop_loss not in (ZERO, position.stop_loss) else None
            if take_profit or stop_loss:
                self._set_tp_sl(position, take_profit, stop_loss, now_ms)
        self._emit_position(order.symbol, order.position_idx)
        self.outbox.append(("wallet", None))

    def _close_order(
        self, order: Order, status: str, now_ms: int, *, cancel_type: str = "", reject_reason: str = ""
    ) -> None:
        order.status = status
        order.updated_ms = now_ms
        if cancel_type:
            order.cancel_type = cancel_type
        if reject_reason:
            order.reject_reason = reject_reason
        self._open(order.symbol).pop(order.order_id, None)
        self._emit_order(order)

    def _cancel_reduce_only(self, symbol: str, idx: int, now_ms: int) -> None:
        for order in list(self._open(symbol).values()):
            if order.position_idx == idx and order.reduce_only and not order.is_conditional:
                self._close_order(order, CANCELLED, now_ms, cancel_type="CancelByReduceOnly")

    # -- TP/SL -----------------------------------------------------------------------

    def _set_tp_sl(
        self, position: Position, take_profit: Decimal | None, stop_loss: Decimal | None, now_ms: int
    ) -> None:
        """Full-mode TP/SL: one conditional market close per leg, sized to the whole position."""
        for kind, price in ((TAKE_PROFIT, take_profit), (STOP_LOSS, stop_loss)):
            if price is None:
                continue
            existing = position.tp_order if kind == TAKE_PROFIT else position.sl_order
            if existing is not None and existing.status == UNTRIGGERED:
                self._close_order(existing, DEACTIVATED, now_ms, cancel_type="CancelByUser")
            order = None
            if price != 0:
                order = Order(
                    order_id=str(uuid.uuid4()),
                    order_link_id="",
                    symbol=position.symbol,
                    side=rules.opposite(position.side),
                    order_type=MARKET,
                    qty=ZERO,
                    price=ZERO,
                    time_in_force="IOC",
                    position_idx=position.position_idx,
                    reduce_only=True,
                    close_on_trigger=True,
                    created_ms=now_ms,
                    updated_ms=now_ms,
                    received_ns=0,
                    status=UNTRIGGERED,
                    stop_order_type=kind,
                    trigger_price=price,
                    trigger_direction=rules.tp_sl_direction(position.side, kind),
                    trigger_by="LastPrice",
                    tpsl_mode="Full",
                    create_type="CreateBy" + kind,
                    last_price_on_created=self.market.last(position.symbol),
                    follows_position=True,
                )
                self.account.orders[order.order_id] = order
                self._open(position.symbol)[order.order_id] = order
                self._emit_order(order)
            if kind == TAKE_PROFIT:
                position.take_profit = price
                position.tp_order = order
            else:
                position.stop_loss = price
                position.sl_order = order
        position.updated_ms = now_ms
        position.seq = self._next_seq()

    def _clear_tp_sl(self, position: Position, now_ms: int) -> None:
        for order in (position.tp_order, position.sl_order):
            if order is not None and order.status == UNTRIGGERED:
                self._close_order(order, DEACTIVATED, now_ms, cancel_type="CancelByTpSlTsClear")
        position.tp_order = position.sl_order = None
        position.take_profit = position.stop_loss = ZERO

    def trading_stop(self, request: dict) -> None:
        p.linear_category(request)
        inst = self.instrument(request)
        mode = p.text(request, "tpslMode", required=True)
        if mode not in ("Full", "Partial"):
            raise SimError(PARAMS_ERROR, "params error: tpslMode must be Full or Partial")
        if mode == "Partial":
            raise SimError(PARAMS_ERROR, "params error: the simulator supports tpslMode Full only")
        if request.get("positionIdx") in (None, ""):
            raise SimError(PARAMS_ERROR, "params error: positionIdx is required")
        idx = self._position_idx(request, inst.symbol)
        take_profit = p.decimal(request, "takeProfit")
        stop_loss = p.decimal(request, "stopLoss")
        for name, value in (("takeProfit", take_profit), ("stopLoss", stop_loss)):
            if value is not None and (value < 0 or (value and not is_multiple(value, inst.tick_size))):
                raise SimError(
                    PARAMS_ERROR, f"params error: {name} must be a multiple of tickSize {inst.tick_size}"
                )
        for name in ("tpTriggerBy", "slTriggerBy"):
            p.choice(request, name, TRIGGER_BY)
        position = self.position(inst.symbol, idx)
        if position.size == 0:
            raise SimError(PARAMS_ERROR, "can not set tp/sl/ts for zero position")
        if take_profit is None and stop_loss is None:
            raise error(TPSL_NOT_MODIFIED)
        if (take_profit is None or take_profit == position.take_profit) and (
            stop_loss is None or stop_loss == position.stop_loss
        ):
            raise error(TPSL_NOT_MODIFIED)
        problem = rules.tp_sl_validation_error(
            position.side, self.market.last(inst.symbol), take_profit or None, stop_loss or None
        )
        if problem:
            raise SimError(PARAMS_ERROR, problem)
        now = wall_ms()
        self._set_tp_sl(position, take_profit, stop_loss, now)
        self._emit_position(inst.symbol, idx)

    # -- the market moves ------------------------------------------------------------

    def on_price(self, symbol: str, now_ms: int | None = None) -> None:
        """Fill resting limits and fire triggers that the new last price reaches."""
        orders = self.account.open_orders.get(symbol)
        if not orders:
            return
        now_ms = now_ms or wall_ms()
        last = self.market.last(symbol)
        for order in list(orders.values()):
            if order.order_id not in orders:
                continue  # closed by an earlier fill in this pass (a TP/SL sibling)
            if order.status == UNTRIGGERED:
                if rules.trigger_hit(order.trigger_direction, order.trigger_price, last):
                    self._trigger(order, now_ms)
            elif order.order_type == LIMIT and rules.resting_order_fills(order.side, order.price, last):
                self._fill(order, order.leaves_qty, order.price, is_maker=True, now_ms=now_ms)

    def _trigger(self, order: Order, now_ms: int) -> None:
        order.status = TRIGGERED
        order.updated_ms = now_ms
        if order.follows_position:
            position = self.position(order.symbol, order.position_idx)
            order.qty = abs(position.size)
            if order.qty == 0:
                self._close_order(order, DEACTIVATED, now_ms, cancel_type="CancelByTpSlTsClear")
                return
        self._emit_order(order)
        order.status = NEW
        self._activate(order, now_ms)

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

    # -- reads -----------------------------------------------------------------------

    def open_orders(self, request: dict) -> list[Order]:
        """`/v5/order/realtime`: open orders, or the last closed ones, newest first."""
        p.linear_category(request)
        if p.text(request, "orderId") or p.text(request, "orderLinkId"):
            # Bybit ignores openOnly when the query names an order: it finds any state.
            order = self.find_order(request)
            return [order] if order is not None else []
        symbols = self._symbols_for(request)
        open_only = p.integer(request, "openOnly", default=0, low=0, high=2)
        order_filter = p.choice(
            request, "orderFilter", ("Order", "StopOrder", "tpslOrder", "OcoOrder", "BidirectionalTpslOrder")
        )
        if open_only == 0:
            rows = [o for s in symbols for o in self._open(s).values()]
        else:
            rows = [
                o
                for o in self.account.orders.values()
                if o.symbol in symbols and o.status not in OPEN_STATUSES
            ][-CLOSED_ORDERS_KEPT:]
        rows = _order_filter(rows, order_filter)
        rows.sort(key=lambda o: o.created_ms, reverse=True)
        return rows

    def order_history(self, request: dict) -> list[Order]:
        p.linear_category(request)
        if p.text(request, "orderId") or p.text(request, "orderLinkId"):
            order = self.find_order(request)
            return [order] if order is not None else []
        symbol = p.text(request, "symbol")
        base_coin = p.text(request, "baseCoin")
        settle_coin = p.text(request, "settleCoin")
        status = p.text(request, "orderStatus")
        order_filter = p.choice(
            request, "orderFilter", ("Order", "StopOrder", "tpslOrder", "OcoOrder", "BidirectionalTpslOrder")
        )
        start, end = _time_range(request)
        rows = []
        for order in self.account.orders.values():
            if symbol and order.symbol != symbol:
                continue
            if base_coin and self.instruments[order.symbol].base_coin != base_coin:
                continue
            if settle_coin and settle_coin != "USDT":
                continue
            if status and order.status != status:
                continue
            if not start <= order.created_ms <= end:
                continue
            rows.append(order)
        rows = _order_filter(rows, order_filter)
        rows.sort(key=lambda o: o.created_ms, reverse=True)
        return rows

    def _symbols_for(self, request: dict) -> list[str]:
        symbol = p.text(request, "symbol")
        base_coin = p.text(request, "baseCoin")
        settle_coin = p.text(request, "settleCoin")
        if symbol:
            return [self.instrument(request).symbol]
        if base_coin:
            return [s for s, inst in self.instruments.items() if inst.base_coin == base_coin]
        if settle_coin:
            return list(self.instruments) if settle_coin == "USDT" else []
        raise SimError(PARAMS_ERROR, "params error: symbol, baseCoin or settleCoin is required")

    def positions(self, request: dict) -> list[Position]:
        p.linear_category(request)
        symbol = p.text(request, "symbol")
        if symbol:
            inst = self.instrument(request)
            return [self.position(inst.symbol, idx) for idx in self.position_indexes(inst.symbol)]
        symbols = self._symbols_for(request)
        rows = [
            position
            for (s, _), position in sorted(self.account.positions.items())
            if s in symbols and position.size != 0
        ]
        return rows

    def executions(self, request: dict) -> list[Execution]:
        p.linear_category(request)
        symbol = p.text(request, "symbol")
        order_id = p.text(request, "orderId")
        link_id = p.text(request, "orderLinkId")
        exec_type = p.text(request, "execType")
        start, end = _time_range(request)
        rows = [
            e
            for e in reversed(self.account.executions)
            if (not symbol or e.symbol == symbol)
            and (not order_id or e.order.order_id == order_id)
            and (not link_id or e.order.order_link_id == link_id)
            and (not exec_type or exec_type == "Trade")
            and start <= e.time_ms <= end
        ]
        return rows

    def closed_pnl(self, request: dict) -> list[ClosedPnl]:
        p.linear_category(request)
        symbol = p.text(request, "symbol")
        start, end = _time_range(request)
        return [
            c
            for c in reversed(self.account.closed_pnls)
            if (not symbol or c.symbol == symbol) and start <= c.time_ms <= end
        ]

    # -- settings --------------------------------------------------------------------

    def set_leverage(self, request: dict) -> None:
        p.linear_category(request)
        inst = self.instrument(request)
        buy = p.decimal(request, "buyLeverage", required=True)
        sell = p.decimal(request, "sellLeverage", required=True)
        if buy != sell:
            raise SimError(PARAMS_ERROR, "params error: buyLeverage must equal sellLeverage")
        if not ONE <= buy <= inst.max_leverage or not is_multiple(buy, Decimal("0.01")):
            raise SimError(
                PARAMS_ERROR, f"leverage invalid: must be within [1, {inst.max_leverage}] in steps of 0.01"
            )
        if buy == self.leverage(inst.symbol):
            raise error(LEVERAGE_NOT_MODIFIED)
        self.account.leverage[inst.symbol] = buy
        for idx in self.position_indexes(inst.symbol):
            self._emit_position(inst.symbol, idx)
        self.outbox.append(("wallet", None))

    def switch_mode(self, request: dict) -> None:
        p.linear_category(request)
        mode = p.integer(request, "mode")
        if mode not in (ONE_WAY, HEDGE):
            raise SimError(PARAMS_ERROR, "params error: mode must be 0 (one-way) or 3 (hedge)")
        symbol = p.text(request, "symbol")
        coin = p.text(request, "coin")
        if symbol:
            symbols = [self.instrument(request).symbol]
        elif coin:
            symbols = [s for s, inst in self.instruments.items() if coin in (inst.base_coin, "USDT")]
        else:
            raise SimError(PARAMS_ERROR, "params error: symbol or coin is required")
        hedge = mode == HEDGE
        changing = [s for s in symbols if (s in self.account.hedge_symbols) != hedge]
        if not changing:
            raise error(MODE_NOT_MODIFIED)
        for s in changing:
            busy = any(pos.size != 0 for (ps, _), pos in self.account.positions.items() if ps == s)
            if busy or self._open(s):
                raise error(POSITION_EXISTS)
        for s in changing:
            for key in [key for key in self.account.positions if key[0] == s]:
                del self.account.positions[key]
            if hedge:
                self.account.hedge_symbols.add(s)
            else:
                self.account.hedge_symbols.discard(s)

    def set_dcp(self, request: dict) -> None:
        product = p.choice(request, "product", ("OPTIONS", "DERIVATIVES", "SPOT"), default="OPTIONS")
        window = p.integer(request, "timeWindow", default=None, low=3, high=300)
        if window is None:
            raise SimError(PARAMS_ERROR, "params error: timeWindow is required")
        self.account.dcp_windows[product] = window

    def dcp_window(self) -> int:
        return self.account.dcp_windows.get("DERIVATIVES", 10)

    # -- outbox ----------------------------------------------------------------------

    def _emit_order(self, order: Order) -> None:
        self.outbox.append(("order", order))

    def _emit_position(self, symbol: str, idx: int) -> None:
        self.outbox.append(("position", self.position(symbol, idx)))


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


def _order_filter(rows: list[Order], order_filter: str) -> list[Order]:
    if order_filter == "Order":
        return [o for o in rows if not o.is_conditional]
    if order_filter in ("StopOrder", "tpslOrder"):
        return [o for o in rows if o.is_conditional]
    return rows


def _time_range(request: dict) -> tuple[int, int]:
    """Bybit's history windows: at most 7 days, the last 7 days by default."""
    week = 7 * 86_400_000
    start = p.integer(request, "startTime")
    end = p.integer(request, "endTime")
    if start is None and end is None:
        end = wall_ms()
        return end - week, end
    if start is None:
        return end - week, end
    if end is None:
        return start, start + week
    if end - start > week:
        raise SimError(PARAMS_ERROR, "params error: the time range may span at most 7 days")
    return start, end


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
