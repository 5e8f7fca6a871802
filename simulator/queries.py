"""Reads: open orders, order history, positions, executions and closed PnL, as Bybit filters them.

A part of `Exchange` (exchange.py); payloads.py turns the rows into Bybit's JSON.
"""

from . import params as p
from .errors import PARAMS_ERROR, SimError
from .market import wall_ms
from .state import CLOSED_ORDERS_KEPT, OPEN_STATUSES, ClosedPnl, Execution, Order, Position


class Queries:
    """`Exchange`'s reads; the state and the other parts they use live on the same object."""

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
