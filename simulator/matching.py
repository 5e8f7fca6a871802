"""Matching and fills: orders meet the market's price; fees, realised PnL, positions and margin.

A part of `Exchange` (exchange.py). The book is deep enough for any order: marketable
orders fill whole at the taker price, resting limits fill whole when the last price reaches them.
"""

import uuid
from decimal import Decimal

from . import rules
from .errors import INSUFFICIENT_AVAILABLE, error
from .market import wall_ms
from .numbers import ZERO
from .rules import BUY, SELL
from .state import (
    CANCELLED,
    FILLED,
    LIMIT,
    MARKET,
    PARTIALLY_FILLED,
    TRAILING_STOP,
    UNTRIGGERED,
    ClosedPnl,
    Execution,
    Order,
    Position,
    WalletTotals,
)


class Matching:
    """`Exchange`'s matching engine; the state and the other parts it uses live on the same object."""

    # -- margin ----------------------------------------------------------------------

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
        collateral = tuple(self.account.collateral.values())
        # Bybit's cross margin: margin balance = wallet balances after the haircut + perp UPL.
        margin_balance = wallet + sum((coin.margin_value for coin in collateral), ZERO) + unrealised
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
            collateral,
        )

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

    # -- fills -----------------------------------------------------------------------

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
        self._log_trade(execution, position)
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
                if order.stop_order_type == TRAILING_STOP and not self._trail_follow(order, last):
                    continue  # waits for its activePrice
                if rules.trigger_hit(order.trigger_direction, order.trigger_price, last):
                    self._trigger(order, now_ms)
            elif order.order_type == LIMIT and rules.resting_order_fills(order.side, order.price, last):
                self._fill(order, order.leaves_qty, order.price, is_maker=True, now_ms=now_ms)
