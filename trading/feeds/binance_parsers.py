"""Binance USD-M ``forceOrder`` payloads -> ``LiquidationEvent``. Pure: no logging, no I/O."""

from __future__ import annotations

from trading.events import BINANCE, LONG, SHORT, LiquidationEvent, MalformedMessage, Source, make_event_id
from trading.feeds.parsing import (
    liquidated_side_from,
    load_json_object,
    non_negative_decimal,
    positive_decimal,
    timestamp_ms,
    traded_symbol,
)

# Binance reports the side of the liquidation ORDER: SELL closes a long.
_BINANCE_LIQUIDATED_SIDE = {"SELL": LONG, "BUY": SHORT}


def parse_binance_force_order(raw: str | bytes, *, source: Source = BINANCE) -> LiquidationEvent:
    """One Binance USD-M ``forceOrder`` message (raw or in the ``{"stream", "data"}`` wrapper).

    ``source``: ``"sim"`` when the simulator serves the stream, so its event ids
    (and so orderLinkIds) never collide with a real Binance liquidation's.

    Price: ``ap`` (average fill price) when > 0, else ``p`` (order price).
    Quantity: ``z`` (accumulated filled qty) when > 0, else ``q`` (order qty).
    ``event_time``: ``o.T`` (the liquidation's trade time), not ``E`` (push time),
    so the same liquidation always gets the same ``event_id``.
    """
    return binance_force_order_event(load_json_object(raw), source=source)


def binance_force_order_event(message: dict, *, source: Source = BINANCE) -> LiquidationEvent:
    """``parse_binance_force_order`` of a message already decoded from JSON (the backtest
    reads its replay file once, as ``simulator.replay`` does)."""
    if "data" in message and "stream" in message:
        message = message["data"]
        if type(message) is not dict:
            raise MalformedMessage("not_an_object")
    if message.get("e") != "forceOrder":
        raise MalformedMessage("not_force_order")
    order = message.get("o")
    if type(order) is not dict:
        raise MalformedMessage("missing_order")
    symbol = traded_symbol(order.get("s"))
    liquidated_side = liquidated_side_from(_BINANCE_LIQUIDATED_SIDE, order.get("S"))
    price_text = order.get("p")
    price = positive_decimal(price_text, "o.p")
    qty_text = order.get("q")
    qty = positive_decimal(qty_text, "o.q")
    average_text = order.get("ap")
    if average_text is not None:
        average = non_negative_decimal(average_text, "o.ap")
        if average > 0:
            price_text, price = average_text, average
    filled_text = order.get("z")
    if filled_text is not None:
        filled = non_negative_decimal(filled_text, "o.z")
        if filled > 0:
            qty_text, qty = filled_text, filled
    event_time = timestamp_ms(order.get("T"), "o.T")
    return LiquidationEvent(
        symbol=symbol,
        liquidated_side=liquidated_side,
        price=price,
        qty=qty,
        notional=price * qty,
        event_time=event_time,
        source=source,
        event_id=make_event_id(
            source=source,
            symbol=symbol,
            event_time=event_time,
            liquidated_side=liquidated_side,
            qty=qty_text,
            price=price_text,
        ),
    )
