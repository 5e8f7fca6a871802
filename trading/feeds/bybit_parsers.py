"""Bybit V5 public linear payloads (``allLiquidation``, ``tickers``, ``kline``) -> our dataclasses.

Pure: no logging, no I/O. ``parse_*`` take a raw frame; ``bybit_*_from`` take an
already decoded data message (the feed decodes once to tell control from data).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trading.events import BYBIT, LONG, SHORT, LiquidationEvent, MalformedMessage, make_event_id
from trading.feeds.parsing import (
    liquidated_side_from,
    load_json_object,
    non_negative_decimal,
    positive_decimal,
    timestamp_ms,
    traded_symbol,
)
from trading.rules.vwap import Candle

# Bybit reports the side of the liquidated POSITION: Buy = a long was liquidated.
_BYBIT_LIQUIDATED_SIDE = {"Buy": LONG, "Sell": SHORT}


@dataclass(frozen=True, slots=True)
class TickerUpdate:
    """One Bybit ``tickers.{symbol}`` message. ``last_price`` and ``mark_price`` are ``None`` in a
    delta that left them out (Bybit's deltas carry only changed fields). ``ts``: the venue's ms
    timestamp."""

    symbol: str
    last_price: Decimal | None
    ts: int
    mark_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class KlineUpdate:
    """One Bybit ``kline.{interval}.{symbol}`` message: usually one candle, oldest first."""

    symbol: str
    interval: str
    candles: tuple[Candle, ...]
    ts: int


def is_bybit_control(message: dict[str, Any]) -> bool:
    """Bybit's answers to our requests (subscribe acks, pongs) carry ``op``; data messages carry ``topic``."""
    return "op" in message


def parse_bybit_all_liquidation(raw: str | bytes) -> list[LiquidationEvent]:
    """One Bybit ``allLiquidation.{symbol}`` message; ``[]`` for control messages (acks, pongs).

    Price is ``p``, the bankruptcy price (Bybit sends no fill price). A batch with
    one bad item is rejected whole: it means the format changed under us.
    """
    message = load_json_object(raw)
    if is_bybit_control(message):
        return []
    return bybit_liquidations_from(message)


def bybit_liquidations_from(message: dict[str, Any]) -> list[LiquidationEvent]:
    """``parse_bybit_all_liquidation`` for an already decoded data message."""
    topic = message.get("topic")
    if type(topic) is not str or not topic.startswith("allLiquidation."):
        raise MalformedMessage("unexpected_topic")
    items = message.get("data")
    if type(items) is not list:
        raise MalformedMessage("bad_data")
    events = []
    for item in items:
        if type(item) is not dict:
            raise MalformedMessage("bad_data")
        symbol = traded_symbol(item.get("s"))
        liquidated_side = liquidated_side_from(_BYBIT_LIQUIDATED_SIDE, item.get("S"))
        qty_text = item.get("v")
        qty = positive_decimal(qty_text, "v")
        price_text = item.get("p")
        price = positive_decimal(price_text, "p")
        event_time = timestamp_ms(item.get("T"), "T")
        events.append(
            LiquidationEvent(
                symbol=symbol,
                liquidated_side=liquidated_side,
                price=price,
                qty=qty,
                notional=price * qty,
                event_time=event_time,
                source=BYBIT,
                event_id=make_event_id(
                    source=BYBIT,
                    symbol=symbol,
                    event_time=event_time,
                    liquidated_side=liquidated_side,
                    qty=qty_text,
                    price=price_text,
                ),
            )
        )
    return events


def parse_bybit_ticker(raw: str | bytes) -> TickerUpdate | None:
    """One Bybit linear ``tickers.{symbol}`` message (snapshot or delta); ``None`` for control messages."""
    message = load_json_object(raw)
    if is_bybit_control(message):
        return None
    return bybit_ticker_from(message)


def bybit_ticker_from(message: dict[str, Any]) -> TickerUpdate:
    topic = message.get("topic")
    if type(topic) is not str or not topic.startswith("tickers."):
        raise MalformedMessage("unexpected_topic")
    if message.get("type") not in ("snapshot", "delta"):
        raise MalformedMessage("bad_type")
    data = message.get("data")
    if type(data) is not dict:
        raise MalformedMessage("bad_data")
    symbol = traded_symbol(data.get("symbol"))
    return TickerUpdate(
        symbol=symbol,
        last_price=_ticker_price(data, "lastPrice"),
        ts=timestamp_ms(message.get("ts"), "ts"),
        mark_price=_ticker_price(data, "markPrice"),
    )


def _ticker_price(data: dict[str, Any], name: str) -> Decimal | None:
    # Bybit: a field missing from a delta did not change; "" means no value.
    text = data.get(name)
    return None if text is None or text == "" else positive_decimal(text, name)


def parse_bybit_kline(raw: str | bytes) -> KlineUpdate | None:
    """One Bybit ``kline.{interval}.{symbol}`` message; ``None`` for control messages."""
    message = load_json_object(raw)
    if is_bybit_control(message):
        return None
    return bybit_kline_from(message)


def bybit_kline_from(message: dict[str, Any]) -> KlineUpdate:
    topic = message.get("topic")
    if type(topic) is not str or not topic.startswith("kline."):
        raise MalformedMessage("unexpected_topic")
    parts = topic.split(".")
    if len(parts) != 3 or not parts[1]:
        raise MalformedMessage("unexpected_topic")
    interval = parts[1]
    symbol = traded_symbol(parts[2])
    items = message.get("data")
    if type(items) is not list or not items:
        raise MalformedMessage("bad_data")
    candles = []
    for item in items:
        if type(item) is not dict:
            raise MalformedMessage("bad_data")
        confirmed = item.get("confirm")
        if type(confirmed) is not bool:
            raise MalformedMessage("bad_confirm")
        candles.append(
            Candle(
                start_ms=timestamp_ms(item.get("start"), "start"),
                open=positive_decimal(item.get("open"), "open"),
                high=positive_decimal(item.get("high"), "high"),
                low=positive_decimal(item.get("low"), "low"),
                close=positive_decimal(item.get("close"), "close"),
                # A quiet minute has no trades: volume and turnover "0".
                volume=non_negative_decimal(item.get("volume"), "volume"),
                turnover=non_negative_decimal(item.get("turnover"), "turnover"),
                confirmed=confirmed,
            )
        )
    candles.sort(key=lambda candle: candle.start_ms)
    return KlineUpdate(
        symbol=symbol, interval=interval, candles=tuple(candles), ts=timestamp_ms(message.get("ts"), "ts")
    )
