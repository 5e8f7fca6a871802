"""Bybit V5 public linear streams: a connection that keeps its subscriptions, and the
``allLiquidation``, ``tickers``/``kline`` and mark-price feeds built on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from trading.events import LiquidationEvent, MalformedMessage, UnsupportedSymbol
from trading.feeds.bybit_parsers import (
    bybit_kline_from,
    bybit_liquidations_from,
    bybit_ticker_from,
    is_bybit_control,
)
from trading.feeds.connection import WebsocketFeed, excerpt
from trading.feeds.parsing import load_json_object
from trading.rules.vwap import MarketState

logger = logging.getLogger("trading.feeds")  # the package's one logger name, see connection.py

BYBIT_PUBLIC_LINEAR_URL = "wss://stream.bybit.com/v5/public/linear"
SIM_BYBIT_PUBLIC_LINEAR_URL = "ws://127.0.0.1:8601/v5/public/linear"

BYBIT_PING = '{"op":"ping"}'


class BybitPublicFeed(WebsocketFeed):
    """A Bybit V5 public linear connection: subscriptions that survive reconnects, and JSON pings.

    Bybit drops a connection that sends nothing for 10 minutes and asks for
    ``{"op": "ping"}`` every 20 s; its answer is a frame, so a healthy
    connection is never silent for longer than the ping interval.
    """

    def __init__(
        self,
        url: str,
        *,
        symbols: Iterable[str] = (),
        app_ping_interval_s: float = 20.0,
        silence_timeout_s: float = 60.0,
        **options: Any,
    ) -> None:
        super().__init__(url, silence_timeout_s=silence_timeout_s, **options)
        self.app_ping_interval_s = app_ping_interval_s
        self._symbols: frozenset[str] = frozenset(symbols)
        self._subscribed: set[str] = set()
        self._subscription_lock = asyncio.Lock()
        self._ping_task: asyncio.Task[None] | None = None
        self._request_number = 0
        # req_id -> (op, topic) of requests not answered yet on this connection.
        self._pending: dict[str, tuple[str, str]] = {}

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def topics(self) -> set[str]:
        """The topics for the current symbols."""
        raise NotImplementedError

    async def update_symbols(self, symbols: Iterable[str]) -> None:
        """Follow exactly these symbols from now on; the open connection is (un)subscribed at once."""
        self._symbols = frozenset(symbols)
        ws = self._ws
        if ws is not None:
            try:
                await self._sync_subscriptions(ws)
            except ConnectionClosed:
                pass  # the reader sees the close, and the next connection subscribes afresh

    async def _sync_subscriptions(self, ws: ClientConnection) -> None:
        # One at a time: a symbol change during the post-connect subscribe must
        # not interleave and leave a topic out.
        async with self._subscription_lock:
            wanted = self.topics()
            for op, topics in (
                ("unsubscribe", sorted(self._subscribed - wanted)),
                ("subscribe", sorted(wanted - self._subscribed)),
            ):
                for topic in topics:
                    # One topic per request: Bybit refuses a whole request for one bad
                    # topic (a delisted symbol), which would silently drop the others.
                    self._request_number += 1
                    req_id = f"{self.name}-{self._request_number}"
                    self._pending[req_id] = (op, topic)
                    await ws.send(json.dumps({"op": op, "req_id": req_id, "args": [topic]}))
                    if op == "subscribe":
                        self._subscribed.add(topic)
                    else:
                        self._subscribed.discard(topic)

    async def _on_open(self, ws: ClientConnection) -> None:
        self._subscribed = set()
        self._pending = {}
        await self._sync_subscriptions(ws)
        self._ping_task = asyncio.get_running_loop().create_task(self._keep_alive(ws))

    async def _on_close(self) -> None:
        task = self._ping_task
        self._ping_task = None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._subscribed = set()
        self._pending = {}

    async def _keep_alive(self, ws: ClientConnection) -> None:
        try:
            while True:
                await asyncio.sleep(self.app_ping_interval_s)
                await ws.send(BYBIT_PING)
        except ConnectionClosed:
            return

    def _control(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if message.get("ret_msg") == "pong" or op == "pong":
            self.stats.pongs += 1
            return
        request = (
            self._pending.pop(message.get("req_id"), None) if type(message.get("req_id")) is str else None
        )
        if message.get("success") is False:
            self.stats.subscribe_failures += 1
            topic = "?"
            if request is not None:
                op, topic = request
                if op == "subscribe":
                    # Not subscribed after all; the next connection tries again.
                    self._subscribed.discard(topic)
            logger.warning(
                "feed_request_failed feed=%s op=%s topic=%s ret_msg=%s",
                self.name,
                op,
                topic,
                excerpt(message.get("ret_msg")),
            )

    def _handle_frame(self, frame: str | bytes) -> None:
        try:
            message = load_json_object(frame)
            if is_bybit_control(message):
                self._control(message)
                return
            self._handle_data(message)
        except UnsupportedSymbol:
            self.stats.unsupported += 1
        except MalformedMessage as error:
            self._malformed(frame, error)
        except Exception:
            self._parser_bug(frame)

    def _handle_data(self, message: dict[str, Any]) -> None:
        raise NotImplementedError


class BybitLiquidationFeed(BybitPublicFeed):
    """Bybit ``allLiquidation.{symbol}`` for the given symbols: every liquidation, batched per 500 ms.

    ``on_event(event)`` runs synchronously for each event of a batch, in order.
    Change the symbols with ``await feed.update_symbols([...])``.
    """

    name = "bybit_liquidation"

    def __init__(
        self,
        url: str = BYBIT_PUBLIC_LINEAR_URL,
        *,
        symbols: Iterable[str],
        on_event: Callable[[LiquidationEvent], None],
        **options: Any,
    ) -> None:
        super().__init__(url, symbols=symbols, **options)
        self.on_event = on_event

    def topics(self) -> set[str]:
        return {f"allLiquidation.{symbol}" for symbol in self._symbols}

    def _handle_data(self, message: dict[str, Any]) -> None:
        events = bybit_liquidations_from(message)
        on_event = self.on_event
        for event in events:
            self.stats.events += 1
            try:
                on_event(event)
            except Exception:
                self.stats.callback_errors += 1
                logger.exception("feed_callback_failed feed=%s", self.name)


class BybitMarketFeed(BybitPublicFeed):
    """Bybit ``tickers.{s}`` and ``kline.1.{s}`` for the given symbols, applied to a ``MarketState``.

    The engine decides which symbols and VWAP windows the ``MarketState`` tracks
    (``MarketState.configure``); updates for other symbols are dropped there.
    After a reconnect the VWAP windows miss the candles of the gap: reseed them
    from REST klines in ``on_connect``.
    """

    name = "bybit_market"

    def __init__(
        self,
        url: str = BYBIT_PUBLIC_LINEAR_URL,
        *,
        symbols: Iterable[str],
        market: MarketState,
        **options: Any,
    ) -> None:
        super().__init__(url, symbols=symbols, **options)
        self.market = market

    def topics(self) -> set[str]:
        topics = set()
        for symbol in self._symbols:
            topics.add(f"tickers.{symbol}")
            topics.add(f"kline.1.{symbol}")
        return topics

    def _handle_data(self, message: dict[str, Any]) -> None:
        topic = message.get("topic")
        if type(topic) is str and topic.startswith("tickers."):
            ticker = bybit_ticker_from(message)
            self.market.apply_price(ticker.symbol, ticker.last_price, self.clock_ms())
        elif type(topic) is str and topic.startswith("kline."):
            kline = bybit_kline_from(message)
            if kline.interval != "1":
                raise MalformedMessage("unexpected_interval")
            self.market.apply_candles(kline.symbol, kline.candles, self.clock_ms())
        else:
            raise MalformedMessage("unexpected_topic")
        self.stats.events += 1


class BybitMarkFeed(BybitPublicFeed):
    """Bybit ``tickers.{symbol}``: each symbol's mark price as it changes (every 100 ms at most on
    Bybit), for the risk watch's equity estimate. ``on_mark(symbol, mark_price)`` runs for each
    message that carries a mark price (deltas without one are counted and skipped)."""

    name = "bybit_marks"

    def __init__(
        self,
        url: str = BYBIT_PUBLIC_LINEAR_URL,
        *,
        symbols: Iterable[str],
        on_mark: Callable[[str, Decimal], None],
        **options: Any,
    ) -> None:
        super().__init__(url, symbols=symbols, **options)
        self.on_mark = on_mark

    def topics(self) -> set[str]:
        return {f"tickers.{symbol}" for symbol in self._symbols}

    def _handle_data(self, message: dict[str, Any]) -> None:
        ticker = bybit_ticker_from(message)
        self.stats.events += 1
        if ticker.mark_price is None:
            return
        try:
            self.on_mark(ticker.symbol, ticker.mark_price)
        except Exception:
            self.stats.callback_errors += 1
            logger.exception("feed_callback_failed feed=%s", self.name)
