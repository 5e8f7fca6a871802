"""Market state on the simulator's price clock: last prices, 1-minute candles, the trade tape.

The market is driven from outside (a replay, `/sim/price`, the still-market ticker);
it never moves by itself. Candles are built from the trades recorded here, so the
kline endpoint, the kline stream and the tickers always agree with the price path.
"""

import bisect
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from .instruments import Instrument
from .numbers import ZERO, round_to_step

MINUTE_MS = 60_000
DAY_MS = 86_400_000
TRADE_TAPE_LENGTH = 1000  # Bybit's recent-trade limit for linear is 1..1000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class MarketClock:
    """Market time in ms: the wall clock, or a replay's rebased time running at a speed.

    `now_ms() = anchor_sim + (wall - anchor_wall) * rate`. A replay at speed X sets
    rate X; "as fast as possible" sets rate 0 and jumps the anchor to each event.
    The clock never goes backwards.
    """

    def __init__(self) -> None:
        now = wall_ms()
        self._anchor_sim = now
        self._anchor_wall = now
        self._rate = 1.0

    def now_ms(self) -> int:
        return int(self._anchor_sim + (wall_ms() - self._anchor_wall) * self._rate)

    def run_at(self, sim_ms: int, rate: float) -> None:
        """Continue from sim_ms at `rate` x wall speed (the caller keeps time monotonic)."""
        self._anchor_sim = sim_ms
        self._anchor_wall = wall_ms()
        self._rate = rate

    def jump_to(self, sim_ms: int) -> None:
        """Stop the clock at sim_ms (replay at maximum speed); never backwards."""
        self.run_at(max(sim_ms, self.now_ms()), 0.0)

    @property
    def rate(self) -> float:
        return self._rate


@dataclass(slots=True)
class Candle:
    start: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    turnover: Decimal = ZERO
    last_trade_ms: int = 0


@dataclass(slots=True)
class Trade:
    trade_id: str
    symbol: str
    price: Decimal
    size: Decimal
    side: str
    time_ms: int
    tick_direction: str
    seq: int


@dataclass(slots=True)
class _DayStats:
    """Aggregates of the closed candles of the last 24 h, cached per minute."""

    minute: int
    high: Decimal
    low: Decimal
    volume: Decimal
    turnover: Decimal
    prev_price_24h: Decimal
    prev_price_1h: Decimal
    empty: bool


@dataclass(slots=True)
class SymbolMarket:
    instrument: Instrument
    last: Decimal
    tick_direction: str = "ZeroPlusTick"
    candles: list[Candle] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    trades: deque = field(default_factory=lambda: deque(maxlen=TRADE_TAPE_LENGTH))
    trade_seq: int = 0
    _stats: _DayStats | None = None


class Market:
    def __init__(self, instruments: dict[str, Instrument], clock: MarketClock) -> None:
        self.clock = clock
        self.instruments = instruments
        self.symbols: dict[str, SymbolMarket] = {
            symbol: SymbolMarket(instrument=inst, last=inst.start_price)
            for symbol, inst in instruments.items()
        }

    def last(self, symbol: str) -> Decimal:
        return self.symbols[symbol].last

    # -- writing ---------------------------------------------------------------------

    def record_trade(self, symbol: str, price: Decimal, size: Decimal, side: str, time_ms: int) -> Trade:
        """A public trade: moves the last price and the current candle."""
        book = self.symbols[symbol]
        price = round_to_step(price, book.instrument.tick_size)
        book.tick_direction = _tick_direction(book.tick_direction, book.last, price)
        book.last = price
        book.trade_seq += 1
        trade = Trade(
            str(uuid.uuid4()), symbol, price, size, side, time_ms, book.tick_direction, book.trade_seq
        )
        book.trades.append(trade)
        self._add_to_candle(book, price, size, time_ms)
        return trade

    def _add_to_candle(self, book: SymbolMarket, price: Decimal, size: Decimal, time_ms: int) -> None:
        start = time_ms - time_ms % MINUTE_MS
        candles = book.candles
        if candles and candles[-1].start == start:
            candle = candles[-1]
            if price > candle.high:
                candle.high = price
            if price < candle.low:
                candle.low = price
            candle.close = price
        elif candles and candles[-1].start > start:
            # A late trade (clock re-anchored mid-minute): count it in the newest candle.
            candle = candles[-1]
            candle.close = price
            candle.high = max(candle.high, price)
            candle.low = min(candle.low, price)
        else:
            if candles:
                # Minutes without trades still get a flat, empty candle, as on Bybit.
                previous = candles[-1]
                gap_start = previous.start + MINUTE_MS
                while gap_start < start:
                    close = previous.close
                    self._append(book, Candle(gap_start, close, close, close, close))
                    gap_start += MINUTE_MS
            candle = Candle(start, price, price, price, price)
            self._append(book, candle)
        candle.volume += size
        candle.turnover += size * price
        candle.last_trade_ms = time_ms

    @staticmethod
    def _append(book: SymbolMarket, candle: Candle) -> None:
        book.candles.append(candle)
        book.starts.append(candle.start)

    def backfill(
        self, symbol: str, end_ms: int, minutes: int, volume_per_minute: Decimal, trades_per_minute: int
    ) -> None:
        """Flat history at the current price: `minutes` full candles before end_ms, steady volume.

        It gives a still market a defined VWAP and 24 h statistics from the first request.
        """
        book = self.symbols[symbol]
        price = book.last
        first = end_ms - end_ms % MINUTE_MS - minutes * MINUTE_MS
        chunk = (volume_per_minute / trades_per_minute).quantize(book.instrument.qty_step)
        volume = chunk * trades_per_minute
        for index in range(minutes):
            start = first + index * MINUTE_MS
            self._append(
                book, Candle(start, price, price, price, price, volume, volume * price, start + MINUTE_MS - 1)
            )
        spacing = MINUTE_MS // trades_per_minute
        count = min(TRADE_TAPE_LENGTH, minutes * trades_per_minute)
        first_trade = end_ms - end_ms % MINUTE_MS - count * spacing
        for index in range(count):
            book.trade_seq += 1
            book.trades.append(
                Trade(
                    str(uuid.uuid4()),
                    symbol,
                    price,
                    chunk,
                    "Buy" if index % 2 else "Sell",
                    first_trade + index * spacing,
                    "ZeroPlusTick",
                    book.trade_seq,
                )
            )

    # -- reading ---------------------------------------------------------------------

    def recent_trades(self, symbol: str, limit: int) -> list[Trade]:
        trades = self.symbols[symbol].trades
        newest = list(trades)[-limit:] if limit < len(trades) else list(trades)
        newest.reverse()
        return newest

    def klines(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        """Candles newest first. Intervals above 1 minute are aggregated from 1-minute candles."""
        book = self.symbols[symbol]
        length_ms = _interval_ms(interval)
        if length_ms == MINUTE_MS:
            high_index = len(book.starts) if end is None else bisect.bisect_right(book.starts, end)
            low_index = 0 if start is None else bisect.bisect_left(book.starts, start)
            low_index = max(low_index, high_index - limit)
            rows = book.candles[low_index:high_index]
            rows.reverse()
            return rows
        # Aggregate: walk 1-minute candles backwards from `end` into buckets.
        high_index = len(book.starts) if end is None else bisect.bisect_right(book.starts, end)
        buckets: list[Candle] = []
        for candle in reversed(book.candles[:high_index]):
            if start is not None and candle.start < start:
                break
            bucket_start = _bucket_start(candle.start, interval, length_ms)
            if buckets and buckets[-1].start == bucket_start:
                bucket = buckets[-1]
                bucket.open = candle.open
                bucket.high = max(bucket.high, candle.high)
                bucket.low = min(bucket.low, candle.low)
                bucket.volume += candle.volume
                bucket.turnover += candle.turnover
            else:
                if len(buckets) == limit:
                    break
                buckets.append(
                    Candle(
                        bucket_start,
                        candle.open,
                        candle.high,
                        candle.low,
                        candle.close,
                        candle.volume,
                        candle.turnover,
                        candle.last_trade_ms,
                    )
                )
        return buckets

    def current_candle(self, symbol: str) -> Candle | None:
        candles = self.symbols[symbol].candles
        return candles[-1] if candles else None

    def day_stats(self, symbol: str, now_ms: int) -> _DayStats:
        """24 h high/low/volume/turnover and the prices 24 h and 1 h ago, from the candles."""
        book = self.symbols[symbol]
        minute = now_ms - now_ms % MINUTE_MS
        stats = book._stats
        if stats is None or stats.minute != minute:
            stats = self._closed_stats(book, minute)
            book._stats = stats
        current = book.candles[-1] if book.candles and book.candles[-1].start == minute else None
        if current is None:
            return stats
        if stats.empty:
            return _DayStats(
                minute,
                current.high,
                current.low,
                current.volume,
                current.turnover,
                current.open,
                current.open,
                False,
            )
        return _DayStats(
            minute,
            max(stats.high, current.high),
            min(stats.low, current.low),
            stats.volume + current.volume,
            stats.turnover + current.turnover,
            stats.prev_price_24h,
            stats.prev_price_1h,
            False,
        )

    @staticmethod
    def _closed_stats(book: SymbolMarket, minute: int) -> _DayStats:
        window_start = minute - DAY_MS + MINUTE_MS
        low_index = bisect.bisect_left(book.starts, window_start)
        high_index = bisect.bisect_left(book.starts, minute)
        window = book.candles[low_index:high_index]
        high = max((c.high for c in window), default=ZERO)
        low = min((c.low for c in window), default=ZERO)
        volume = sum((c.volume for c in window), ZERO)
        turnover = sum((c.turnover for c in window), ZERO)
        prev_24h = window[0].open if window else ZERO
        hour_index = bisect.bisect_left(book.starts, minute - 60 * MINUTE_MS)
        prev_1h = book.candles[hour_index].open if hour_index < len(book.candles) else ZERO
        return _DayStats(minute, high, low, volume, turnover, prev_24h, prev_1h, not window)


INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")


def _interval_ms(interval: str) -> int:
    if interval == "D":
        return DAY_MS
    if interval == "W":
        return 7 * DAY_MS
    if interval == "M":
        return 0  # calendar months have no fixed length
    return int(interval) * MINUTE_MS


def _bucket_start(start_ms: int, interval: str, length_ms: int) -> int:
    if interval == "M":
        moment = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
        return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp() * 1000)
    if interval == "W":
        # Bybit's weekly candles start on Monday 00:00 UTC; the epoch was a Thursday.
        monday_offset = 4 * DAY_MS
        return start_ms - (start_ms - monday_offset) % length_ms
    return start_ms - start_ms % length_ms


def _tick_direction(previous: str, old: Decimal, new: Decimal) -> str:
    if new > old:
        return "PlusTick"
    if new < old:
        return "MinusTick"
    return "ZeroPlusTick" if previous in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"
