"""The body of an order as Bybit's ``POST /v5/order/create`` takes it, built from checked values.

Pure: no validation here (the gateway checks the instrument's filters, the tick and the
orderLinkId before it calls this, and raises), no I/O. One builder for the gateway and for
the backtest, which sends the same body to the simulator in-process.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trading.rules import Side

CATEGORY = "linear"
MARKET = "Market"


def plain(value: Decimal) -> str:
    """A Decimal as Bybit wants it: plain notation, never ``1E-7``."""
    return format(value, "f")


def order_body(
    *,
    symbol: str,
    side: Side,
    qty: Decimal,
    order_link_id: str,
    position_idx: int,
    order_type: str = MARKET,
    price: Decimal | None = None,
    time_in_force: str | None = None,
    reduce_only: bool = False,
    take_profit: Decimal | None = None,
    stop_loss: Decimal | None = None,
) -> dict[str, Any]:
    """``qty`` in base coin and prices in USDT, already on the qty step and the tick.

    TP/SL go with the order (Bybit's default ``tpslMode`` is ``Full``: they cover the
    whole position); a reduce-only order carries none.
    """
    body: dict[str, Any] = {
        "category": CATEGORY,
        "symbol": symbol,
        "side": side.value,
        "orderType": order_type,
        "qty": plain(qty),
        "orderLinkId": order_link_id,
        "positionIdx": position_idx,
    }
    if price is not None:
        body["price"] = plain(price)
    if time_in_force is not None:
        body["timeInForce"] = time_in_force
    if reduce_only:
        body["reduceOnly"] = True
    if take_profit is not None:
        body["takeProfit"] = plain(take_profit)
    if stop_loss is not None:
        body["stopLoss"] = plain(stop_loss)
    return body
