"""Rolling VWAP over 1-minute candles, and the per-symbol market view the engine decides on.

VWAP here is ``sum(turnover) / sum(volume)`` over the candles in the window, where
``turnover`` is the candle's quote volume in USDT and ``volume`` its base-coin
volume (Bybit kline fields ``turnover``/``volume``; Binance's ``quote_volume``/
``volume``). Turnover is the exact sum of ``price * qty`` over the candle's trades,
so this is the true volume-weighted average price of those trades; the usual
``typical_price * volume`` form is only an approximation of it, needed when a
venue gives no turnover.

Window: the last ``N`` one-minute candles by start time, counting the current,
still-open candle. With the newest candle starting at ``S`` the window holds the
candles starting in ``[S - (N - 1) min, S]``.

Updates are O(1) amortised: closed candles sit in a deque with running sums, the
open candle is kept apart and replaced on every update, old candles drop off the
left end. The running sums use a 60-digit context, so adding and subtracting
venue numbers (at most ~20 significant digits) never rounds and the sums don't
drift over days of updates.

Pure: standard library only, no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Context, Decimal

MINUTE_MS = 60_000
ZERO = Decimal(0)
# Exact sums: wide enough that no sum of venue numbers is ever rounded.
_SUMS = Context(prec=60)


@dataclass(frozen=True, slots=True)
class Candle:
    """One 1-minute candle. Prices in USDT, ``volume`` in base coin, ``turnover`` in USDT.

    ``confirmed`` is Bybit's ``confirm``: true once the minute is over.
    """

    start_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal
    confirmed: bool


class RollingVwap:
    """VWAP of one symbol over the last ``window_minutes`` one-minute candles."""

    __slots__ = (
        "window_minutes",
        "_span_ms",
        "_closed",
        "_closed_volume",
        "_closed_turnover",
        "_open",
        "_value",
    )

    def __init__(self, window_minutes: int) -> None:
        if window_minutes < 1:
            raise ValueError(f"window_minutes must be at least 1, got {window_minutes}")
        self.window_minutes = window_minutes
        # A candle starting this long before the newest one is out of the window.
        self._span_ms = window_minutes * MINUTE_MS
        self._closed: deque[Candle] = deque()
        self._closed_volume = ZERO
        self._closed_turnover = ZERO
        self._open: Candle | None = None
        self._value: Decimal | None = None

    @property
    def value(self) -> Decimal | None:
        """The VWAP in USDT; ``None`` until the window holds some traded volume."""
        return self._value

    @property
    def newest_start_ms(self) -> int | None:
        if self._open is not None:
            return self._open.start_ms
        return self._closed[-1].start_ms if self._closed else None

    @property
    def oldest_start_ms(self) -> int | None:
        if self._closed:
            return self._closed[0].start_ms
        return self._open.start_ms if self._open is not None else None

    def candles(self) -> list[Candle]:
        """The candles in the window, oldest first (the open one last)."""
        rows = list(self._closed)
        if self._open is not None:
            rows.append(self._open)
        return rows

    def update(self, candle: Candle) -> None:
        """Take one kline update: the open candle's latest state, or a closed candle.

        A candle older than the newest one seen is late and ignored, except a
        re-send of the newest closed minute, which replaces it (REST seeding and
        the stream can disagree on the last digits of a closed minute; the later
        word wins).
        """
        start = candle.start_ms
        current = self._open
        if current is not None:
            if start < current.start_ms:
                return
            self._open = None
            if start > current.start_ms:
                # A new minute began and we never saw the old one's confirm
                # (dropped frame, reconnect): its last state is as final as we get.
                self._append_closed(current)
        elif self._closed:
            newest_closed = self._closed[-1]
            if start < newest_closed.start_ms:
                return
            if start == newest_closed.start_ms:
                if not candle.confirmed:
                    return  # a stale open-state echo of a minute we already closed
                self._pop_newest_closed()
        if candle.confirmed:
            self._append_closed(candle)
        else:
            self._open = candle
        self._evict_before(start - self._span_ms + MINUTE_MS)
        self._recompute()

    def _append_closed(self, candle: Candle) -> None:
        self._closed.append(candle)
        self._closed_volume = _SUMS.add(self._closed_volume, candle.volume)
        self._closed_turnover = _SUMS.add(self._closed_turnover, candle.turnover)

    def _pop_newest_closed(self) -> None:
        candle = self._closed.pop()
        self._closed_volume = _SUMS.subtract(self._closed_volume, candle.volume)
        self._closed_turnover = _SUMS.subtract(self._closed_turnover, candle.turnover)

    def _evict_before(self, cutoff_ms: int) -> None:
        closed = self._closed
        while closed and closed[0].start_ms < cutoff_ms:
            candle = closed.popleft()
            self._closed_volume = _SUMS.subtract(self._closed_volume, candle.volume)
            self._closed_turnover = _SUMS.subtract(self._closed_turnover, candle.turnover)

    def _recompute(self) -> None:
        volume = self._closed_volume
        turnover = self._closed_turnover
        if self._open is not None:
            volume = _SUMS.add(volume, self._open.volume)
            turnover = _SUMS.add(turnover, self._open.turnover)
        # No traded volume in the window: no price to weight, so no VWAP.
        self._value = turnover / volume if volume > 0 else None


class SymbolMarket:
    """What the engine knows about one symbol's Bybit market (a ``PriceView`` for ``decide``).

    ``last_price`` is Bybit's last traded price. ``last_price_ms`` and
    ``last_candle_ms`` are *our* clock (ms) when the ticker / a kline last arrived:
    staleness is about whether our copy is current, so it is measured on the
    local clock and survives venue clock skew and replayed (old) venue times.
    """

    __slots__ = ("symbol", "last_price", "last_price_ms", "last_candle_ms", "_windows")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.last_price: Decimal | None = None
        self.last_price_ms = 0
        self.last_candle_ms = 0
        self._windows: dict[int, RollingVwap] = {}

    @property
    def windows(self) -> tuple[int, ...]:
        return tuple(sorted(self._windows))

    def vwap(self, window_minutes: int) -> Decimal | None:
        """The VWAP over ``window_minutes``; ``None`` if that window isn't tracked or has no volume."""
        window = self._windows.get(window_minutes)
        return window.value if window is not None else None

    def is_stale(self, now_ms: int, max_age_ms: int) -> bool:
        """No last price yet, or the last ticker is more than ``max_age_ms`` old."""
        return self.last_price is None or now_ms - self.last_price_ms > max_age_ms

    def set_windows(self, windows: Iterable[int]) -> None:
        """Track exactly these VWAP windows. A new window is filled from the longest existing one."""
        wanted = set(windows)
        history = max(self._windows.values(), key=lambda w: w.window_minutes, default=None)
        table: dict[int, RollingVwap] = {}
        for minutes in sorted(wanted):
            window = self._windows.get(minutes)
            if window is None:
                window = RollingVwap(minutes)
                if history is not None:
                    for candle in history.candles():
                        window.update(candle)
            table[minutes] = window
        self._windows = table

    def clear_candles(self) -> None:
        """Forget every window's candles (the last price stays): before a full reseed from
        REST, which would otherwise be ignored as older than the candles already held."""
        self._windows = {minutes: RollingVwap(minutes) for minutes in self._windows}

    def apply_price(self, last_price: Decimal | None, at_ms: int) -> None:
        """A ticker arrived at ``at_ms``. ``None``: a delta without ``lastPrice``.

        Bybit's ticker deltas leave out fields that did not change, so a delta
        without a price still says the known price is current as of now.
        """
        if last_price is not None:
            self.last_price = last_price
        if self.last_price is not None:
            self.last_price_ms = at_ms

    def apply_candle(self, candle: Candle, at_ms: int) -> None:
        for window in self._windows.values():
            window.update(candle)
        self.last_candle_ms = at_ms


class MarketState:
    """``SymbolMarket`` per symbol. Owned by the engine's event loop; not thread-safe."""

    __slots__ = ("_symbols",)

    def __init__(self) -> None:
        self._symbols: dict[str, SymbolMarket] = {}

    def get(self, symbol: str) -> SymbolMarket | None:
        return self._symbols.get(symbol)

    def symbols(self) -> list[str]:
        return sorted(self._symbols)

    def watch(self, symbol: str, windows: Iterable[int]) -> SymbolMarket:
        """Track ``symbol`` with exactly these VWAP windows (minutes), keeping data already held."""
        market = self._symbols.get(symbol)
        if market is None:
            market = self._symbols[symbol] = SymbolMarket(symbol)
        market.set_windows(windows)
        return market

    def configure(self, windows_by_symbol: dict[str, Iterable[int]]) -> None:
        """Track exactly these symbols and windows (the configured coins); drop the rest."""
        for symbol in list(self._symbols):
            if symbol not in windows_by_symbol:
                del self._symbols[symbol]
        for symbol, windows in windows_by_symbol.items():
            self.watch(symbol, windows)

    def apply_price(self, symbol: str, last_price: Decimal | None, at_ms: int) -> None:
        market = self._symbols.get(symbol)
        if market is not None:
            market.apply_price(last_price, at_ms)

    def apply_candles(self, symbol: str, candles: Iterable[Candle], at_ms: int) -> None:
        """Kline updates (stream) or a history (REST seed, oldest first) for a watched symbol."""
        market = self._symbols.get(symbol)
        if market is not None:
            for candle in candles:
                market.apply_candle(candle, at_ms)

    def is_stale(self, symbol: str, now_ms: int, max_age_ms: int) -> bool:
        market = self._symbols.get(symbol)
        return market is None or market.is_stale(now_ms, max_age_ms)
