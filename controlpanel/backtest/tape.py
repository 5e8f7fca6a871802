"""The replay's price path laid out once for a backtest, and each symbol's klines read back on demand.

``simulator.replay.ReplayData.timeline()`` makes an object per price step (four per
1-minute kline, ``simulator.replay.price_path``) and sorts them with the liquidations.
Most steps change nothing a backtest reports: a symbol neither held nor ordered needs
no price at all, and a configured one needs its price and VWAP only when a liquidation
gets as far as reading its market. So here:

- ``price_slots``: the steps as slots, one per (time, step of the minute), each naming
  the (symbol, kline row) pairs that step then, in the order the simulator plays them
  (time, step index, then the klines' order). The runner walks the slots and does
  per-symbol work only for what it holds.
- ``SymbolKlines``: one symbol's rows; the latest step at a time (a bisect), a step's
  trade, and a minute's candle as the venue's kline stream would show it after a step.
- ``CatchUpMarket``: the engine's ``SymbolMarket`` for ``decide``, fed the candles and
  the last price it missed the first time ``decide`` reads it: the same updates the
  kline and ticker streams would have sent, in order, so the same VWAP.

Requires regular klines (each symbol's open times minute-aligned and increasing, one
row a minute): a row is then exactly one candle of the venue's. Binance's files and
``simulator.sample`` write them so; anything else is refused at load.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from decimal import Decimal

from simulator.numbers import round_to_step
from simulator.replay import STEP_OFFSETS_MS, KlineRow, price_path
from trading.rules.vwap import Candle, SymbolMarket

MINUTE_MS = 60_000
LAST_STEP = len(STEP_OFFSETS_MS) - 1
# Every step of a row must fall in the row's own minute (the last one is 59 s in).
_MAX_PHASE_MS = MINUTE_MS - STEP_OFFSETS_MS[-1]

Slot = tuple[int, int, list[tuple[str, int]]]


def price_slots(klines: dict[str, list[KlineRow]]) -> list[Slot]:
    """(time, step index, [(symbol, row index), ...]) in play order.

    The same order as ``ReplayData.timeline()``'s price points: it sorts (time, step
    index) stably over the klines in dict order; two steps with the same time and index
    come from rows with the same open time, so one slot lists them, in that order.
    """
    by_open_time: dict[int, list[tuple[str, int]]] = {}
    for symbol, rows in klines.items():
        for index, row in enumerate(rows):
            members = by_open_time.get(row.open_time)
            if members is None:
                by_open_time[row.open_time] = [(symbol, index)]
            else:
                members.append((symbol, index))
    slots = [
        (open_time + offset, step, members)
        for open_time, members in by_open_time.items()
        for step, offset in enumerate(STEP_OFFSETS_MS)
    ]
    slots.sort()  # (time, step) is unique to a slot: the member lists are never compared
    return slots


class SymbolKlines:
    """One symbol's kline rows, with the steps ``simulator.replay.price_path`` plays for each."""

    __slots__ = ("symbol", "rows", "open_times", "tick_size", "_path_row", "_path")

    def __init__(self, symbol: str, rows: list[KlineRow], tick_size: Decimal) -> None:
        self.symbol = symbol
        self.rows = rows
        self.open_times = [row.open_time for row in rows]
        self.tick_size = tick_size
        self._path_row = -1
        self._path: list = []
        previous_minute = None
        for open_time in self.open_times:
            minute = open_time - open_time % MINUTE_MS
            late = open_time - minute >= _MAX_PHASE_MS
            if late or (previous_minute is not None and minute <= previous_minute):
                raise ValueError(
                    f"klines/{symbol}.csv: open time {open_time} is not one row a minute "
                    "(minute-aligned, increasing); the backtest needs regular 1-minute klines"
                )
            previous_minute = minute

    def path(self, row: int) -> list[tuple[int, Decimal, Decimal, str]]:
        """The row's four steps (time, price, size, taker side), the last row's kept."""
        if row != self._path_row:
            self._path = price_path(self.rows[row])
            self._path_row = row
        return self._path

    def latest_step(self, now_ms: int, played_from_ms: int) -> tuple[int, int] | None:
        """(row, step) of the last step at or before ``now_ms``; None if there is none
        since ``played_from_ms`` (steps before it were not played)."""
        row = bisect_right(self.open_times, now_ms) - 1
        if row < 0:
            return None
        open_time = self.open_times[row]
        step = LAST_STEP
        while open_time + STEP_OFFSETS_MS[step] > now_ms:
            step -= 1
        if open_time + STEP_OFFSETS_MS[step] < played_from_ms:
            return None
        return row, step

    def candle(self, row: int, last_step: int, played_from_ms: int) -> tuple[Candle, int] | None:
        """The row's minute after ``last_step`` as the venue builds its candle (the first
        step's price opens, volume and turnover add up, prices on the tick), and the
        time of its last step; None if no step of it was played."""
        tick = self.tick_size
        open_ = high = low = close = volume = turnover = None
        at_ms = 0
        for time_ms, raw_price, size, _side in self.path(row)[: last_step + 1]:
            if time_ms < played_from_ms:
                continue
            price = round_to_step(raw_price, tick)
            if open_ is None:
                open_ = high = low = close = price
                volume = size
                turnover = size * price
            else:
                if price > high:
                    high = price
                elif price < low:
                    low = price
                close = price
                volume += size
                turnover += size * price
            at_ms = time_ms
        if open_ is None:
            return None
        start = self.open_times[row] - self.open_times[row] % MINUTE_MS
        return Candle(start, open_, high, low, close, volume, turnover, False), at_ms


class CatchUpMarket:
    """A ``PriceView`` for ``decide``: the engine's ``SymbolMarket``, caught up on first read.

    Catching up applies, in order, each minute's last state since the previous catch-up
    (as the kline stream's last update of that minute) and the current minute so far,
    then the last price. Minutes that would already have left the VWAP window are not
    applied: the window drops them anyway. ``at(now_ms)`` arms it for one decision.
    """

    __slots__ = ("market", "klines", "played_from_ms", "now_ms", "_span_ms", "_fed_row", "_caught", "_armed")

    def __init__(self, market: SymbolMarket, klines: SymbolKlines | None, played_from_ms: int) -> None:
        self.market = market
        self.klines = klines
        self.played_from_ms = played_from_ms
        self.now_ms = 0
        # The oldest minute a window holds starts this long before the newest.
        self._span_ms = (max(market.windows, default=1) - 1) * MINUTE_MS
        self._fed_row = 0  # rows before this one had their minute's last state applied
        self._caught: tuple[int, int] | None = None
        self._armed = False

    def at(self, now_ms: int) -> CatchUpMarket:
        self.now_ms = now_ms
        self._armed = True
        return self

    @property
    def last_price(self) -> Decimal | None:
        self._catch_up()
        return self.market.last_price

    @property
    def last_price_ms(self) -> int:
        self._catch_up()
        return self.market.last_price_ms

    @property
    def last_candle_ms(self) -> int:
        self._catch_up()
        return self.market.last_candle_ms

    def vwap(self, window_minutes: int) -> Decimal | None:
        self._catch_up()
        return self.market.vwap(window_minutes)

    def _catch_up(self) -> None:
        if not self._armed:
            return
        self._armed = False
        klines = self.klines
        if klines is None:
            return
        latest = klines.latest_step(self.now_ms, self.played_from_ms)
        if latest is None or latest == self._caught:
            return
        self._caught = latest
        row, step = latest
        market = self.market
        start = klines.open_times[row] - klines.open_times[row] % MINUTE_MS
        first = max(self._fed_row, bisect_left(klines.open_times, start - self._span_ms))
        for earlier in range(first, row):
            minute = klines.candle(earlier, LAST_STEP, self.played_from_ms)
            if minute is not None:
                market.apply_candle(*minute)
        candle, at_ms = klines.candle(row, step, self.played_from_ms)
        market.apply_candle(candle, at_ms)
        market.apply_price(candle.close, at_ms)
        self._fed_row = row
