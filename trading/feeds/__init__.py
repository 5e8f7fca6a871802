"""Websocket streams -> our dataclasses: the liquidation feeds and Bybit's public market data.

Two halves:

* **Parsers** (``parse_*``; ``parsing``, ``binance_parsers``, ``bybit_parsers``):
  the one place venue payloads become ``LiquidationEvent``/``TickerUpdate``/``KlineUpdate``.
  Strict: every field is checked for type and range, numbers are built from the
  venue's strings, and anything off raises ``MalformedMessage`` with a short
  reason, never another exception. They run on the hot path, so they do no
  logging and no I/O.
* **Adapters** (``BinanceLiquidationFeed`` in ``binance``, ``BybitLiquidationFeed``
  and ``BybitMarketFeed`` in ``bybit``, ``BybitPrivateFeed`` in ``bybit_private``):
  long-lived asyncio loops around a ``websockets`` connection (``connection``)
  that reconnect with jittered exponential backoff, roll over before the venue's
  24 h limit, reconnect a stream that went silent, and count everything in
  ``FeedStats``. Bad input is counted, logged once, and skipped; it never stops a feed.
"""

from trading.feeds.binance import BINANCE_LIQUIDATION_URL, BinanceLiquidationFeed
from trading.feeds.binance_parsers import binance_force_order_event, parse_binance_force_order
from trading.feeds.bybit import (
    BYBIT_PUBLIC_LINEAR_URL,
    BybitLiquidationFeed,
    BybitMarketFeed,
    BybitMarkFeed,
)
from trading.feeds.bybit_parsers import (
    KlineUpdate,
    TickerUpdate,
    parse_bybit_all_liquidation,
    parse_bybit_kline,
    parse_bybit_ticker,
)
from trading.feeds.bybit_private import BybitPrivateFeed
from trading.feeds.connection import (
    CLOSED,
    CONNECT_FAILED,
    ROLLOVER,
    SILENT,
    Backoff,
    FeedStats,
    WebsocketFeed,
)

__all__ = [
    "BINANCE_LIQUIDATION_URL",
    "BYBIT_PUBLIC_LINEAR_URL",
    "CLOSED",
    "CONNECT_FAILED",
    "ROLLOVER",
    "SILENT",
    "Backoff",
    "BinanceLiquidationFeed",
    "BybitLiquidationFeed",
    "BybitMarketFeed",
    "BybitMarkFeed",
    "BybitPrivateFeed",
    "FeedStats",
    "KlineUpdate",
    "TickerUpdate",
    "WebsocketFeed",
    "binance_force_order_event",
    "parse_binance_force_order",
    "parse_bybit_all_liquidation",
    "parse_bybit_kline",
    "parse_bybit_ticker",
]
