"""Batch order creation: up to 20 orders a request, one result per order, unknown outcomes
settled order by order as ``place_order`` settles them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trading.bybit.http import RATE_LIMITED
from trading.bybit.orders import DUPLICATE_ORDER_LINK_ID, OrderCalls
from trading.bybit.types import CATEGORY, BatchItemResult, OrderAck, OrderRequest, Position
from trading.errors import (
    ClockSkewError,
    ExchangeUnreachable,
    GatewayError,
    OrderOutcomeUnknown,
    RetryableError,
    error_for_ret_code,
)

BATCH_LIMIT = 20  # linear create-batch takes at most 20 orders (since Feb 2025)


class BatchOrderCalls(OrderCalls):
    """``place_orders_batch`` of ``BybitGateway``: each order is validated and settled as a single one is."""

    def place_orders_batch(self, *, orders: Sequence[OrderRequest]) -> list[BatchItemResult]:
        """Place many orders, 20 per request; one result per input, in input order.

        Orders we refuse before sending come back with their ``OrderRefused``
        and are not sent. The venue checks each order separately (the
        envelope says OK even when all fail); a batch larger than the rate
        budget left in the second fails its excess orders with 10006, so size
        batches to what you can afford. Per-order 110072 and an unanswered
        request are settled by ``orderLinkId`` as in ``place_order``.
        """
        results: dict[int, BatchItemResult] = {}
        to_send: list[tuple[int, dict[str, Any]]] = []
        for index, order in enumerate(orders):
            try:
                params = self._order_params(
                    symbol=order.symbol,
                    side=order.side,
                    qty=order.qty,
                    order_link_id=order.order_link_id,
                    order_type=order.order_type,
                    price=order.price,
                    time_in_force=order.time_in_force,
                    reduce_only=order.reduce_only,
                    take_profit=order.take_profit,
                    stop_loss=order.stop_loss,
                    reference_price=order.reference_price,
                )
            except GatewayError as refusal:
                results[index] = BatchItemResult(order.order_link_id, None, refusal)
                continue
            to_send.append((index, params))
        for start in range(0, len(to_send), BATCH_LIMIT):
            chunk = to_send[start : start + BATCH_LIMIT]
            results.update(self._submit_batch_chunk(chunk))
        return [results[index] for index in range(len(orders))]

    def close_positions_batch(self, *, closes: Sequence[tuple[Position, str]]) -> list[BatchItemResult]:
        """Close up to 20 positions in one create-batch request: ``(position, orderLinkId)`` each,
        built as ``close_position`` builds a single close (exact size, opposite side, the
        position's own ``positionIdx``). One result per close, in input order; the budget the
        answer named is ``rate_limit_status("place_batch_order")`` on the calling thread.
        """
        if len(closes) > BATCH_LIMIT:
            raise ValueError(f"at most {BATCH_LIMIT} closes per request, got {len(closes)}")
        chunk = [(index, self._close_params(position, link)) for index, (position, link) in enumerate(closes)]
        results = self._submit_batch_chunk(chunk) if chunk else {}
        return [results[index] for index in range(len(closes))]

    def _submit_batch_chunk(self, chunk: list[tuple[int, dict[str, Any]]]) -> dict[int, BatchItemResult]:
        results: dict[int, BatchItemResult] = {}
        pending = chunk
        resent = False
        clock_resynced = False
        while pending:
            # Batch items carry no category: it is given once for the request.
            request = [{k: v for k, v in params.items() if k != "category"} for _, params in pending]
            try:
                body = self._call_once("place_batch_order", {"category": CATEGORY, "request": request})
                acks, statuses = _batch_lists(body)
            except ClockSkewError:
                if clock_resynced:
                    raise
                clock_resynced = True
                self.sync_clock()
                continue
            except GatewayError as error:
                if not isinstance(error, RetryableError) or error.code == RATE_LIMITED:
                    for index, params in pending:
                        results[index] = BatchItemResult(params["orderLinkId"], None, error)
                    return results
                # No answer: learn order by order what landed.
                still_absent = []
                for index, params in pending:
                    try:
                        existing = self._look_up_sent_order(params)
                    except GatewayError as lookup_error:
                        results[index] = BatchItemResult(params["orderLinkId"], None, lookup_error)
                        continue
                    if existing is not None:
                        results[index] = BatchItemResult(params["orderLinkId"], existing, None)
                    else:
                        still_absent.append((index, params))
                if resent:
                    for index, params in still_absent:
                        results[index] = BatchItemResult(
                            params["orderLinkId"],
                            None,
                            OrderOutcomeUnknown(
                                "batch got no answer twice", order_link_id=params["orderLinkId"]
                            ),
                        )
                    return results
                resent = True
                pending = still_absent
                continue
            for position, (index, params) in enumerate(pending):
                order_link_id = params["orderLinkId"]
                status = statuses[position] if position < len(statuses) else {"code": 0}
                ack = acks[position] if position < len(acks) else {}
                code = status.get("code") or 0
                if code == 0 and ack.get("orderId"):
                    placed_id = ack.get("orderLinkId") or order_link_id
                    placed = OrderAck(str(ack["orderId"]), str(placed_id), params["symbol"])
                    results[index] = BatchItemResult(order_link_id, placed, None)
                    continue
                error = (
                    error_for_ret_code(code, str(status.get("msg") or ""))
                    if code
                    else GatewayError(None, "batch answer without an orderId")
                )
                if code == DUPLICATE_ORDER_LINK_ID:
                    try:
                        existing = self._look_up_sent_order(params)
                    except GatewayError as lookup_error:
                        error = lookup_error
                    else:
                        if existing is not None:
                            results[index] = BatchItemResult(order_link_id, existing, None)
                            continue
                        error = OrderOutcomeUnknown(
                            f"orderLinkId {order_link_id} is taken but no order shows under it",
                            order_link_id=order_link_id,
                        )
                results[index] = BatchItemResult(order_link_id, None, error)
            return results
        return results


def _batch_lists(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The answer's acks (``result.list``) and per-order statuses (``retExtInfo.list``).

    Lists of objects with whole-number codes, or ``ExchangeUnreachable``: an answer we cannot
    read says nothing about which orders landed, so each is looked up by its orderLinkId.
    """
    acks = (body.get("result") or {}).get("list") or []
    ext = body.get("retExtInfo") or {}
    statuses = (ext.get("list") if isinstance(ext, dict) else None) or []
    for rows in (acks, statuses):
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ExchangeUnreachable(None, "batch answer without its lists")
    if not all(type(status.get("code") or 0) is int for status in statuses):
        raise ExchangeUnreachable(None, "batch answer with a code that is not a number")
    return acks, statuses
