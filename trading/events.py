"""The liquidation engine's input: one forced liquidation, whichever venue reported it.

Plain frozen slots dataclasses, built only by the parsers in ``trading.feeds``.
Prices and quantities are ``Decimal`` built from the venue's strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

LONG = "long"
SHORT = "short"

BINANCE = "binance"
BYBIT = "bybit"
SIM = "sim"

LiquidatedSide = Literal["long", "short"]
Source = Literal["binance", "bybit", "sim"]


class MalformedMessage(ValueError):
    """A stream message we cannot turn into events. ``reason`` is a short code for logs and stats."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedSymbol(MalformedMessage):
    """A well-formed liquidation on a contract we never trade (USDC-margined, dated futures).

    Binance's all-market stream carries these (``BTCUSDC``, ``BTCUSDT_250328``).
    They are not venue bugs, so the feeds count them apart from malformed messages
    and don't log each one.
    """


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    """One forced liquidation on a linear USDT perpetual.

    ``liquidated_side`` is the side of the *position* that was liquidated
    (Binance reports the liquidation order's side, Bybit the position's; the
    parsers map both to this). ``price`` in USDT (Binance: average fill price,
    Bybit: bankruptcy price), ``qty`` in base coin, ``notional = price * qty`` in
    USDT. ``event_time`` is the venue's ms timestamp of the liquidation.

    ``event_id`` is stable for the same venue message, so it is the decision key
    of the ``orderLinkId``: the same liquidation delivered twice (a replay after a
    reconnect) makes the same id and Bybit refuses the second order.
    """

    symbol: str
    liquidated_side: LiquidatedSide
    price: Decimal
    qty: Decimal
    notional: Decimal
    event_time: int
    source: Source
    event_id: str


def make_event_id(
    *, source: str, symbol: str, event_time: int, liquidated_side: str, qty: str, price: str
) -> str:
    """``source:symbol:event_time:side:qty@price``, with qty and price as the venue wrote them."""
    return f"{source}:{symbol}:{event_time}:{liquidated_side}:{qty}@{price}"
