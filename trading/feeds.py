"""Websocket streams -> our dataclasses: the liquidation feeds and Bybit's public market data.

Two halves:

* **Parsers** (``parse_*``): the one place venue payloads become
  ``LiquidationEvent``/``TickerUpdate``/``KlineUpdate``. Strict: every field is
  checked for type and range, numbers are built from the venue's strings, and
  anything off raises ``MalformedMessage`` with a short reason, never another
  exception. They run on the hot path, so they do no logging and no I/O.
* **Adapters** (``BinanceLiquidationFeed``, ``BybitLiquidationFeed``,
  ``BybitMarketFeed``): long-lived asyncio loops around a ``websockets``
  connection that reconnect with jittered exponential backoff, roll over before
  the venue's 24 h limit, reconnect a stream that went silent, and count
  everything in ``FeedStats``. Bad input is counted, logged once, and skipped;
  it never stops a feed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from trading.events import (
    BINANCE,
    BYBIT,
    LONG,
    SHORT,
    LiquidationEvent,
    MalformedMessage,
    Source,
    UnsupportedSymbol,
    make_event_id,
)
from trading.rules.vwap import Candle, MarketState

logger = logging.getLogger(__name__)

BINANCE_LIQUIDATION_URL = "wss://fstream.binance.com/market/ws/!forceOrder@arr"
BYBIT_PUBLIC_LINEAR_URL = "wss://stream.bybit.com/v5/public/linear"
SIM_BINANCE_LIQUIDATION_URL = "ws://127.0.0.1:8601/ws/!forceOrder@arr"
SIM_BYBIT_PUBLIC_LINEAR_URL = "ws://127.0.0.1:8601/v5/public/linear"

# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

# A liquidation message is ~250 bytes and a Bybit batch a few KB; the websocket
# layer already caps frames at 1 MiB, this guards callers that parse other sources.
MAX_MESSAGE_CHARS = 1 << 20
# No real price or quantity comes near this; anything above is corruption.
MAX_NUMBER = Decimal("1e15")
# Venue times are ms since the epoch; same absurdity bound as numbers.
MAX_TIMESTAMP_MS = 10**15
# Plain decimal strings only: no sign, exponent, NaN/Infinity, spaces or
# underscores (all of which Decimal() would accept).
_NUMBER_TEXT = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
# What we trade: linear USDT perpetuals (BTCUSDT, 1000PEPEUSDT). The base is
# letters and digits but not necessarily ASCII: Binance lists "币安人生USDT".
# [^\W_a-z] = a Unicode letter or digit that is not "_" and not ASCII lower case.
_USDT_PERPETUAL = re.compile(r"[^\W_a-z]{1,20}USDT")
# Well-formed symbols of contracts we don't trade: USDC-margined (BTCUSDC,
# Bybit's BTCPERP), inverse (BTCUSD), dated futures (BTCUSDT_250328, BTC-27DEC24).
_OTHER_CONTRACT = re.compile(r"[^\W_a-z]{2,30}(?:[_-][^\W_a-z]{1,12})?")


@dataclass(frozen=True, slots=True)
class TickerUpdate:
    """One Bybit ``tickers.{symbol}`` message. ``last_price`` is ``None`` in a delta that left it out
    (Bybit's deltas carry only changed fields). ``ts``: the venue's ms timestamp."""

    symbol: str
    last_price: Decimal | None
    ts: int


@dataclass(frozen=True, slots=True)
class KlineUpdate:
    """One Bybit ``kline.{interval}.{symbol}`` message: usually one candle, oldest first."""

    symbol: str
    interval: str
    candles: tuple[Candle, ...]
    ts: int


def load_json_object(raw: str | bytes | bytearray | memoryview) -> dict[str, Any]:
    """The JSON object in one text frame; ``MalformedMessage`` for anything else."""
    if type(raw) is str:
        text = raw
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        # Decode explicitly: json.loads(bytes) would also guess UTF-16/32.
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("not_utf8") from None
    else:
        raise MalformedMessage("not_text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise MalformedMessage("too_large")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested junk ("[[[[..."); ValueError covers
        # JSONDecodeError and int strings beyond Python's digit limit.
        raise MalformedMessage("invalid_json") from None
    if type(message) is not dict:
        raise MalformedMessage("not_an_object")
    return message


def _positive(value: Any, name: str) -> Decimal:
    """A venue number string > 0 and <= MAX_NUMBER."""
    if type(value) is not str or not _NUMBER_TEXT.fullmatch(value):
        raise MalformedMessage(f"bad_number:{name}")
    number = Decimal(value)
    if not 0 < number <= MAX_NUMBER:
        raise MalformedMessage(f"out_of_range:{name}")
    return number


def _non_negative(value: Any, name: str) -> Decimal:
    if type(value) is not str or not _NUMBER_TEXT.fullmatch(value):
        raise MalformedMessage(f"bad_number:{name}")
    number = Decimal(value)
    if number > MAX_NUMBER:
        raise MalformedMessage(f"out_of_range:{name}")
    return number


def _timestamp(value: Any, name: str) -> int:
    # type() is, not isinstance: True is an int too.
    if type(value) is not int or not 0 < value < MAX_TIMESTAMP_MS:
        raise MalformedMessage(f"bad_time:{name}")
    return value


def _symbol(value: Any) -> str:
    if type(value) is not str:
        raise MalformedMessage("bad_symbol")
    if _USDT_PERPETUAL.fullmatch(value):
        return value
    if _OTHER_CONTRACT.fullmatch(value):
        raise UnsupportedSymbol("unsupported_symbol")
    raise MalformedMessage("bad_symbol")


# Binance reports the side of the liquidation ORDER: SELL closes a long.
_BINANCE_LIQUIDATED_SIDE = {"SELL": LONG, "BUY": SHORT}
# Bybit reports the side of the liquidated POSITION: Buy = a long was liquidated.
_BYBIT_LIQUIDATED_SIDE = {"Buy": LONG, "Sell": SHORT}


def _liquidated_side(mapping: dict[str, str], value: Any) -> str:
    # Check the type first: a list or dict can't even be looked up in the mapping.
    side = mapping.get(value) if type(value) is str else None
    if side is None:
        raise MalformedMessage("bad_side")
    return side


def parse_binance_force_order(raw: str | bytes, *, source: Source = BINANCE) -> LiquidationEvent:
    """One Binance USD-M ``forceOrder`` message (raw or in the ``{"stream", "data"}`` wrapper).

    ``source``: ``"sim"`` when the simulator serves the stream, so its event ids
    (and so orderLinkIds) never collide with a real Binance liquidation's.

    Price: ``ap`` (average fill price) when > 0, else ``p`` (order price).
    Quantity: ``z`` (accumulated filled qty) when > 0, else ``q`` (order qty).
    ``event_time``: ``o.T`` (the liquidation's trade time), not ``E`` (push time),
    so the same liquidation always gets the same ``event_id``.
    """
    message = load_json_object(raw)
    if "data" in message and "stream" in message:
        message = message["data"]
        if type(message) is not dict:
            raise MalformedMessage("not_an_object")
    if message.get("e") != "forceOrder":
        raise MalformedMessage("not_force_order")
    order = message.get("o")
    if type(order) is not dict:
        raise MalformedMessage("missing_order")
    symbol = _symbol(order.get("s"))
    liquidated_side = _liquidated_side(_BINANCE_LIQUIDATED_SIDE, order.get("S"))
    price_text = order.get("p")
    price = _positive(price_text, "o.p")
    qty_text = order.get("q")
    qty = _positive(qty_text, "o.q")
    average_text = order.get("ap")
    if average_text is not None and _non_negative(average_text, "o.ap") > 0:
        price_text = average_text
        price = Decimal(average_text)
    filled_text = order.get("z")
    if filled_text is not None and _non_negative(filled_text, "o.z") > 0:
        qty_text = filled_text
        qty = Decimal(filled_text)
    event_time = _timestamp(order.get("T"), "o.T")
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
        symbol = _symbol(item.get("s"))
        liquidated_side = _liquidated_side(_BYBIT_LIQUIDATED_SIDE, item.get("S"))
        qty_text = item.get("v")
        qty = _positive(qty_text, "v")
        price_text = item.get("p")
        price = _positive(price_text, "p")
        event_time = _timestamp(item.get("T"), "T")
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
    symbol = _symbol(data.get("symbol"))
    last_price_text = data.get("lastPrice")
    # Bybit: a field missing from a delta did not change; "" means no value.
    last_price = (
        None if last_price_text is None or last_price_text == "" else _positive(last_price_text, "lastPrice")
    )
    return TickerUpdate(symbol=symbol, last_price=last_price, ts=_timestamp(message.get("ts"), "ts"))


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
    symbol = _symbol(parts[2])
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
                start_ms=_timestamp(item.get("start"), "start"),
                open=_positive(item.get("open"), "open"),
                high=_positive(item.get("high"), "high"),
                low=_positive(item.get("low"), "low"),
                close=_positive(item.get("close"), "close"),
                # A quiet minute has no trades: volume and turnover "0".
                volume=_non_negative(item.get("volume"), "volume"),
                turnover=_non_negative(item.get("turnover"), "turnover"),
                confirmed=confirmed,
            )
        )
    candles.sort(key=lambda candle: candle.start_ms)
    return KlineUpdate(
        symbol=symbol, interval=interval, candles=tuple(candles), ts=_timestamp(message.get("ts"), "ts")
    )


# --------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------

# Reconnect reasons (log field ``reason=`` and FeedStats.reconnect_reasons keys).
CONNECT_FAILED = "connect_failed"
CLOSED = "closed"
SILENT = "silent"
ROLLOVER = "rollover"
ERROR = "error"

MALFORMED_EXCERPT_CHARS = 500


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Backoff:
    """Reconnect delays: exponential, capped, with "equal jitter".

    Attempt ``n`` (1-based) waits a uniform random time in ``[d/2, d]`` with
    ``d = min(cap_s, base_s * 2**(n-1))``: it grows with every failure, never
    exceeds the cap, and reconnecting clients don't stampede in lockstep.
    """

    def __init__(self, *, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("need 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        # min() before the power would overflow: 2**1100 is fine for ints, not floats.
        return min(self.cap_s, self.base_s * 2 ** min(attempt - 1, 64))

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


@dataclass(slots=True)
class FeedStats:
    """Counters of one feed, for health checks and the dashboard. Monotonic times are ``loop.time()``."""

    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    events: int = 0
    malformed: int = 0
    unsupported: int = 0
    callback_errors: int = 0
    pongs: int = 0
    subscribe_failures: int = 0
    connected: bool = False
    connected_since: float | None = None
    last_frame_at: float | None = None
    reconnect_reasons: Counter[str] = field(default_factory=Counter)
    malformed_reasons: Counter[str] = field(default_factory=Counter)
    # The latest (reason, attempt, delay_s), newest last.
    recent_reconnects: deque[tuple[str, int, float]] = field(default_factory=lambda: deque(maxlen=50))

    def as_dict(self) -> dict[str, Any]:
        return {
            "connects": self.connects,
            "reconnects": self.reconnects,
            "frames": self.frames,
            "events": self.events,
            "malformed": self.malformed,
            "unsupported": self.unsupported,
            "callback_errors": self.callback_errors,
            "pongs": self.pongs,
            "subscribe_failures": self.subscribe_failures,
            "connected": self.connected,
            "reconnect_reasons": dict(self.reconnect_reasons),
            "malformed_reasons": dict(self.malformed_reasons),
        }


def _excerpt(frame: Any) -> str:
    """A frame for a log line: repr (so newlines can't forge log lines), cut to ~500 chars."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        frame = bytes(frame)
    size = len(frame) if isinstance(frame, (str, bytes)) else 0
    text = repr(frame[:MALFORMED_EXCERPT_CHARS]) if size else repr(frame)
    if size > MALFORMED_EXCERPT_CHARS:
        text += f"...(+{size - MALFORMED_EXCERPT_CHARS} chars)"
    return text


class WebsocketFeed:
    """The connection loop shared by the feeds. Subclasses handle frames (``_handle_frame``).

    ``run()`` loops until ``stop()``: connect, read until the connection ends,
    wait a backoff delay, reconnect. A connection ends when the peer closes or
    fails (websockets' protocol pings, ``ping_interval_s``/``ping_timeout_s``,
    detect a dead peer), when no frame arrived for ``silence_timeout_s``, or
    when it reached ``max_connection_age_s`` (a planned rollover: reconnect at
    once). After a connection that stayed up ``healthy_after_s`` the backoff
    starts over.

    Runs on one event loop; every callback is called on it.
    """

    name = "feed"

    def __init__(
        self,
        url: str,
        *,
        silence_timeout_s: float,
        max_connection_age_s: float = 23 * 3600,
        healthy_after_s: float = 60.0,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        backoff: Backoff | None = None,
        on_connect: Callable[[], None] | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        malformed_log_limit_per_minute: int = 20,
        name: str | None = None,
    ) -> None:
        if silence_timeout_s <= 0 or max_connection_age_s <= 0:
            raise ValueError("silence_timeout_s and max_connection_age_s must be positive")
        self.url = url
        if name is not None:
            self.name = name
        self.silence_timeout_s = silence_timeout_s
        self.max_connection_age_s = max_connection_age_s
        self.healthy_after_s = healthy_after_s
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.backoff = backoff or Backoff()
        self.on_connect = on_connect
        self.clock_ms = clock_ms
        self.stats = FeedStats()
        self._malformed_log_limit = malformed_log_limit_per_minute
        self._malformed_log_window_start = 0.0
        self._malformed_logged = 0
        self._malformed_suppressed = 0
        self._stopping = False
        self._wakeup: asyncio.Event | None = None
        self._ws: ClientConnection | None = None
        self._attempt = 0
        self.frame_received_ns = 0

    # -- lifecycle ----------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run()`` to return; closes the current connection. Call it on the feed's event loop."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        ws = self._ws
        if ws is not None:
            asyncio.get_running_loop().create_task(ws.close())

    async def run(self) -> None:
        """Connect and read until ``stop()``, reconnecting as needed. Never raises on venue trouble.

        A stopped feed stays stopped (``stop()`` before ``run()`` makes it return at once).
        """
        loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        while not self._stopping:
            try:
                reason, detail, lived_s = await self._connect_and_read(loop)
            except Exception as exc:
                # Not venue trouble but a bug (ours or the library's): log it with the
                # traceback and keep the feed alive behind the backoff, like any failure.
                logger.exception("feed_error feed=%s", self.name)
                reason, detail, lived_s = ERROR, type(exc).__name__, None
            if self._stopping:
                break
            if reason == ROLLOVER:
                # Planned: the connection was healthy, reconnect at once.
                self._attempt = 0
                delay = 0.0
            else:
                if lived_s is not None and lived_s >= self.healthy_after_s:
                    self._attempt = 0
                self._attempt += 1
                delay = self.backoff.delay(self._attempt)
            self.stats.reconnects += 1
            self.stats.reconnect_reasons[reason] += 1
            self.stats.recent_reconnects.append((reason, self._attempt, delay))
            log = logger.info if reason == ROLLOVER else logger.warning
            log(
                "feed_reconnect feed=%s reason=%s attempt=%d delay_s=%.3f detail=%s",
                self.name,
                reason,
                self._attempt,
                delay,
                detail,
            )
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
                except TimeoutError:
                    pass

    async def _connect_and_read(self, loop: asyncio.AbstractEventLoop) -> tuple[str, str, float | None]:
        """One connection's life: ``(reason it ended, detail, seconds it was up or None)``."""
        try:
            ws = await websockets.connect(
                self.url,
                open_timeout=self.open_timeout_s,
                ping_interval=self.ping_interval_s,
                ping_timeout=self.ping_timeout_s,
                close_timeout=self.close_timeout_s,
                # Frames are a few hundred bytes: deflate would cost more CPU than it saves.
                compression=None,
                max_size=MAX_MESSAGE_CHARS,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            return CONNECT_FAILED, type(exc).__name__, None
        if self._stopping:
            await ws.close()
            return CLOSED, "stopping", None
        opened_at = loop.time()
        self._ws = ws
        self.stats.connects += 1
        self.stats.connected = True
        self.stats.connected_since = opened_at
        try:
            await self._on_open(ws)
            if self.on_connect is not None:
                try:
                    self.on_connect()
                except Exception:
                    logger.exception("feed_on_connect_failed feed=%s", self.name)
            reason, detail = await self._read(ws, loop, opened_at)
        except ConnectionClosed as exc:
            # The peer went away while we were subscribing.
            reason, detail = CLOSED, _close_detail(exc)
        finally:
            self._ws = None
            self.stats.connected = False
            self.stats.connected_since = None
            await self._on_close()
            await ws.close()
        return reason, detail, loop.time() - opened_at

    async def _read(
        self, ws: ClientConnection, loop: asyncio.AbstractEventLoop, opened_at: float
    ) -> tuple[str, str]:
        rollover_at = opened_at + self.max_connection_age_s
        silence = self.silence_timeout_s
        handle = self._handle_frame
        stats = self.stats
        try:
            async with asyncio.timeout(None) as timer:
                while True:
                    now = loop.time()
                    if now >= rollover_at:
                        return ROLLOVER, f"age_s={now - opened_at:.1f}"
                    # One timer for both: the next frame must come before the
                    # silence limit, and never past the rollover time.
                    timer.reschedule(min(now + silence, rollover_at))
                    frame = await ws.recv()
                    # Wall-clock arrival of the frame, read by the engine for tick-to-order timing.
                    self.frame_received_ns = time.time_ns()
                    stats.frames += 1
                    stats.last_frame_at = loop.time()
                    handle(frame)
        except TimeoutError:
            now = loop.time()
            # Timers may fire a hair early; 1 ms of slack keeps the reason right.
            if now + 0.001 >= rollover_at:
                return ROLLOVER, f"age_s={now - opened_at:.1f}"
            return SILENT, f"no_frame_for_s={silence}"
        except ConnectionClosed as exc:
            return CLOSED, _close_detail(exc)

    async def _on_open(self, ws: ClientConnection) -> None:
        """Subscribe, start keep-alive tasks. Runs before the first ``recv``."""

    async def _on_close(self) -> None:
        """Stop what ``_on_open`` started."""

    def _handle_frame(self, frame: str | bytes) -> None:
        raise NotImplementedError

    # -- frame bookkeeping ----------------------------------------------------

    def _malformed(self, frame: Any, error: MalformedMessage) -> None:
        """Count a bad frame and log it once with its content (rate-limited against floods)."""
        self.stats.malformed += 1
        self.stats.malformed_reasons[error.reason] += 1
        now = time.monotonic()
        if now - self._malformed_log_window_start >= 60.0:
            if self._malformed_suppressed:
                logger.warning(
                    "feed_malformed_suppressed feed=%s count=%d", self.name, self._malformed_suppressed
                )
            self._malformed_log_window_start = now
            self._malformed_logged = 0
            self._malformed_suppressed = 0
        if self._malformed_logged < self._malformed_log_limit:
            self._malformed_logged += 1
            logger.warning(
                "feed_malformed feed=%s reason=%s raw=%s", self.name, error.reason, _excerpt(frame)
            )
        else:
            self._malformed_suppressed += 1

    def _parser_bug(self, frame: Any) -> None:
        # A parser must only raise MalformedMessage; if it ever doesn't, keep the feed alive.
        logger.exception("feed_parser_error feed=%s raw=%s", self.name, _excerpt(frame))
        self._malformed(frame, MalformedMessage("parser_error"))


def _close_detail(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    return f"code={frame.code}" if frame is not None else "code=none"


class BinanceLiquidationFeed(WebsocketFeed):
    """Binance USD-M ``!forceOrder@arr``: every liquidation (sampled: the latest per symbol per second).

    ``on_event(event)`` runs synchronously for each parsed event, on the event
    loop, directly from the frame handler: the engine decides and sends the order
    from it. ``on_malformed(frame, error)`` (optional) sees each rejected frame.
    In sim mode pass ``source="sim"``.

    Binance pings every 3 minutes and websockets answers; our own pings
    (``ping_interval_s``) detect a dead peer sooner. Binance closes a connection
    at 24 h, so we roll over at 23 h. The all-market stream can be quiet for
    minutes (95 s gaps in the recorded data), so ``silence_timeout_s`` defaults
    to 5 minutes: a needless reconnect is cheap, a dead stream is not.
    """

    name = "binance"

    def __init__(
        self,
        url: str = BINANCE_LIQUIDATION_URL,
        *,
        on_event: Callable[[LiquidationEvent], None],
        on_malformed: Callable[[Any, MalformedMessage], None] | None = None,
        source: Source = BINANCE,
        silence_timeout_s: float = 300.0,
        **options: Any,
    ) -> None:
        super().__init__(url, silence_timeout_s=silence_timeout_s, **options)
        self.on_event = on_event
        self.on_malformed = on_malformed
        self.source = source

    def _handle_frame(self, frame: str | bytes) -> None:
        try:
            event = parse_binance_force_order(frame, source=self.source)
        except UnsupportedSymbol:
            self.stats.unsupported += 1
            return
        except MalformedMessage as error:
            self._malformed(frame, error)
            if self.on_malformed is not None:
                try:
                    self.on_malformed(frame, error)
                except Exception:
                    self.stats.callback_errors += 1
                    logger.exception("feed_callback_failed feed=%s", self.name)
            return
        except Exception:
            self._parser_bug(frame)
            return
        self.stats.events += 1
        try:
            self.on_event(event)
        except Exception:
            self.stats.callback_errors += 1
            logger.exception("feed_callback_failed feed=%s", self.name)


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
                _excerpt(message.get("ret_msg")),
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


BYBIT_PRIVATE_TOPICS = ("position", "order", "wallet")
DCP_TOPIC = "dcp.future"


class BybitPrivateFeed(BybitPublicFeed):
    """Bybit V5 private stream (``/v5/private``): our positions, orders and wallet as they change.

    Authenticates on every connection (``{"op": "auth", "args": [key, expires, signature]}``,
    signature = HMAC-SHA256 of ``"GET/realtime" + expires``), then subscribes
    ``position``, ``order`` and ``wallet``. Each data message calls
    ``on_update(topic, rows)`` with the raw ``data`` list; the engine parses the rows
    with the gateway's parsers, the same ones its REST reconciliation uses.
    """

    name = "bybit_private"

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        api_secret: str,
        on_update: Callable[[str, list[dict[str, Any]]], None],
        auth_expiry_ms: int = 10_000,
        disconnect_cancel_all: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(url, symbols=(), **options)
        self._api_key = api_key
        self._api_secret = api_secret.encode()
        self.on_update = on_update
        self.auth_expiry_ms = auth_expiry_ms
        self.disconnect_cancel_all = disconnect_cancel_all

    def topics(self) -> set[str]:
        topics = set(BYBIT_PRIVATE_TOPICS)
        if self.disconnect_cancel_all:
            # Bybit's DCP only watches connections subscribed to dcp.future: without it,
            # losing this connection would never cancel our resting orders.
            topics.add(DCP_TOPIC)
        return topics

    def _auth_message(self) -> str:
        expires = int(time.time() * 1000) + self.auth_expiry_ms
        signature = hmac.new(self._api_secret, f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
        return json.dumps({"op": "auth", "args": [self._api_key, expires, signature]})

    async def _on_open(self, ws: ClientConnection) -> None:
        await ws.send(self._auth_message())
        # The answer must come before subscribing: a refused key would otherwise
        # look like a quiet account. Other frames cannot arrive before auth.
        answer = load_json_object(await asyncio.wait_for(ws.recv(), timeout=self.open_timeout_s))
        if answer.get("op") != "auth" or answer.get("success") is not True:
            self.stats.subscribe_failures += 1
            logger.error("feed_auth_failed feed=%s ret_msg=%s", self.name, _excerpt(answer.get("ret_msg")))
            raise ConnectionClosed(None, None)
        await super()._on_open(ws)

    def _handle_data(self, message: dict[str, Any]) -> None:
        topic = message.get("topic")
        rows = message.get("data")
        if type(topic) is not str or type(rows) is not list:
            raise MalformedMessage("unexpected_private_message")
        if topic == DCP_TOPIC:
            return  # DCP status pushes: the subscription itself is what matters
        base_topic = topic.split(".", 1)[0]
        if base_topic not in BYBIT_PRIVATE_TOPICS:
            raise MalformedMessage("unexpected_topic")
        self.stats.events += 1
        try:
            self.on_update(base_topic, rows)
        except Exception:
            self.stats.callback_errors += 1
            logger.exception("feed_callback_failed feed=%s", self.name)
