"""The websocket connection loop every feed shares: connect, jittered-backoff reconnect,
rollover before the venue's 24 h limit, silence detection, and malformed-frame counting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from trading.events import MalformedMessage
from trading.feeds.parsing import MAX_MESSAGE_CHARS

# One logger for the whole package, named as before the split, so log lines
# (formatted with %(name)s) and logger-level settings stay the same.
logger = logging.getLogger("trading.feeds")

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


def excerpt(frame: Any) -> str:
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
            logger.warning("feed_malformed feed=%s reason=%s raw=%s", self.name, error.reason, excerpt(frame))
        else:
            self._malformed_suppressed += 1

    def _parser_bug(self, frame: Any) -> None:
        # A parser must only raise MalformedMessage; if it ever doesn't, keep the feed alive.
        logger.exception("feed_parser_error feed=%s raw=%s", self.name, excerpt(frame))
        self._malformed(frame, MalformedMessage("parser_error"))


def _close_detail(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    return f"code={frame.code}" if frame is not None else "code=none"
