"""TP/SL and conditional orders: Full-mode take-profit and stop-loss legs, and triggers firing.

A part of `Exchange` (exchange.py); a fired trigger becomes a live order in matching.py.
"""

import uuid
from decimal import Decimal

from . import params as p
from . import rules
from .errors import PARAMS_ERROR, TPSL_NOT_MODIFIED, SimError, error
from .market import wall_ms
from .numbers import ZERO, is_multiple
from .state import (
    DEACTIVATED,
    MARKET,
    NEW,
    STOP_LOSS,
    TAKE_PROFIT,
    TRIGGER_BY,
    TRIGGERED,
    UNTRIGGERED,
    Order,
    Position,
)


class TakeProfitStopLoss:
    def _position_stop_add(
        self,
        position: Position,
        *,
        kind: str,
        trigger_price: Decimal,
        trigger_direction: int,
        now_ms: int,
        **trail,
    ) -> Order:
        """A position's conditional market close (Full mode: it follows the position's size), as
        Bybit makes one for a TP, an SL or a trailing stop: kept, listed as open, and pushed."""
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
            trigger_price=trigger_price,
            trigger_direction=trigger_direction,
            trigger_by="LastPrice",
            tpsl_mode="Full",
            create_type="CreateBy" + kind,
            last_price_on_created=self.market.last(position.symbol),
            follows_position=True,
            **trail,
        )
        self.account.orders[order.order_id] = order
        self._open(position.symbol)[order.order_id] = order
        self._emit_order(order)
        return order

    """`Exchange`'s TP/SL and triggers; the state and the other parts they use live on the same object."""

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
                order = self._position_stop_add(
                    position,
                    kind=kind,
                    trigger_price=price,
                    trigger_direction=rules.tp_sl_direction(position.side, kind),
                    now_ms=now_ms,
                )
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
        self._clear_trailing_stop(position, now_ms, cancel_type="CancelByTpSlTsClear")

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
        trailing_stop = p.decimal(request, "trailingStop")
        active_price = p.decimal(request, "activePrice")
        position = self.position(inst.symbol, idx)
        if position.size == 0:
            raise SimError(PARAMS_ERROR, "can not set tp/sl/ts for zero position")
        # A request without trailingStop leaves the trailing stop as it is (and one without
        # takeProfit/stopLoss leaves those), as on Bybit.
        trailing_changes = self._trading_stop_trailing(position, trailing_stop, active_price, inst.tick_size)
        tpsl_changes = not (
            (take_profit is None or take_profit == position.take_profit)
            and (stop_loss is None or stop_loss == position.stop_loss)
        )
        if not (tpsl_changes or trailing_changes):
            raise error(TPSL_NOT_MODIFIED)
        problem = rules.tp_sl_validation_error(
            position.side, self.market.last(inst.symbol), take_profit or None, stop_loss or None
        )
        if problem:
            raise SimError(PARAMS_ERROR, problem)
        now = wall_ms()
        if tpsl_changes:
            self._set_tp_sl(position, take_profit, stop_loss, now)
        if trailing_changes:
            self._set_trailing_stop(position, trailing_stop, active_price, now)
        self._emit_position(inst.symbol, idx)

    # -- triggers --------------------------------------------------------------------

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
