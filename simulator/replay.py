"""Replay data: the recorded-day layout, read once, turned into a timeline of events.

Layout of a replay directory (the same one `sample.py` writes and the recorder docs
describe):

    liquidations.jsonl    one Binance USD-M `forceOrder` message per line
    klines/SYMBOL.csv     1-minute klines in Binance's column order, header row optional:
                          open_time, open, high, low, close, volume, close_time,
                          quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore

Inside each minute the price walks open -> high -> low -> close, or open -> low -> high
-> close when the candle closed below its open, at 0, 20, 40 and 59 s; each step is a
public trade of a quarter of the minute's volume, so the replayed candles repeat the
recorded OHLC and volume.
"""

import csv
import json
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from .instruments import Instrument, derived_instrument

MINUTE_MS = 60_000
# When in the minute each of the four price points is played.
STEP_OFFSETS_MS = (0, 20_000, 40_000, 59_000)


# Tuples, not frozen dataclasses: a recorded day is hundreds of thousands of rows, and a
# frozen dataclass's __init__ (one object.__setattr__ per field) costs three times a tuple's.
class KlineRow(NamedTuple):
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class PricePoint:
    time_ms: int
    symbol: str
    price: Decimal
    size: Decimal
    side: str


class Liquidation(NamedTuple):
    time_ms: int
    message: dict  # the recorded Binance forceOrder message, untouched


@dataclass
class ReplayData:
    klines: dict[str, list[KlineRow]]
    liquidations: list[Liquidation]
    instruments: dict[str, Instrument]

    @property
    def start_ms(self) -> int:
        starts = [rows[0].open_time for rows in self.klines.values() if rows]
        if self.liquidations:
            starts.append(self.liquidations[0].time_ms)
        return min(starts) - min(starts) % MINUTE_MS if starts else 0

    def timeline(self) -> list[PricePoint | Liquidation]:
        """Every price point and liquidation in time order (a price step before a liquidation
        of the same millisecond, so the liquidation sees the price of its moment)."""
        events: list[tuple[int, int, int, object]] = []
        for symbol, rows in self.klines.items():
            for row in rows:
                for index, (time_ms, price, size, side) in enumerate(price_path(row)):
                    events.append((time_ms, 0, index, PricePoint(time_ms, symbol, price, size, side)))
        for index, liquidation in enumerate(self.liquidations):
            events.append((liquidation.time_ms, 1, index, liquidation))
        events.sort(key=lambda event: event[:3])
        return [event[3] for event in events]


def price_path(row: KlineRow) -> list[tuple[int, Decimal, Decimal, str]]:
    """The four trades that replay one candle: (time, price, size, taker side)."""
    # The usual reading of a candle: a bearish one went up first, then down to close;
    # a bullish one dipped first, then rose to close.
    if row.close < row.open:
        prices = (row.open, row.high, row.low, row.close)
    else:
        prices = (row.open, row.low, row.high, row.close)
    size = row.volume / 4
    path = []
    previous = prices[0]
    for offset, price in zip(STEP_OFFSETS_MS, prices, strict=True):
        side = "Sell" if price < previous else "Buy"
        path.append((row.open_time + offset, price, size, side))
        previous = price
    return path


def read_klines(path: Path) -> list[KlineRow]:
    rows = []
    with path.open(newline="") as handle:
        for fields in csv.reader(handle):
            if not fields or not fields[0].strip().isdigit():
                continue  # Binance's header row is optional
            open_time = int(fields[0])
            if open_time > 10**14:
                open_time //= 1000  # Binance spot files from 2025 use microseconds
            rows.append(
                KlineRow(
                    open_time,
                    Decimal(fields[1]),
                    Decimal(fields[2]),
                    Decimal(fields[3]),
                    Decimal(fields[4]),
                    Decimal(fields[5]),
                )
            )
    rows.sort(key=lambda row: row.open_time)
    return rows


def read_liquidations(path: Path) -> list[Liquidation]:
    liquidations = []
    if not path.exists():
        return liquidations
    with path.open() as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            message = json.loads(line)
            liquidations.append(Liquidation(int(message["o"]["T"]), message))
    liquidations.sort(key=lambda liquidation: liquidation.time_ms)
    return liquidations


def load(directory: str | Path) -> ReplayData:
    directory = Path(directory)
    kline_dir = directory / "klines"
    if not directory.is_dir():
        raise FileNotFoundError(f"replay directory not found: {directory}")
    klines = {}
    if kline_dir.is_dir():
        for path in sorted(kline_dir.glob("*.csv")):
            rows = read_klines(path)
            if rows:
                klines[path.stem.upper()] = rows
    liquidations = read_liquidations(directory / "liquidations.jsonl")
    if not klines and not liquidations:
        raise ValueError(f"no klines/*.csv and no liquidations.jsonl in {directory}")
    # Liquidations of symbols without klines are still streamed, but only symbols with
    # klines get an instrument: without a price path there is nothing to trade against.
    instruments = {}
    liquidation_sizes: dict[str, list[str]] = {}
    if klines:
        for liquidation in liquidations:
            order = liquidation.message["o"]
            liquidation_sizes.setdefault(order["s"], []).append(order["q"])
    for symbol_id, (symbol, rows) in enumerate(sorted(klines.items()), start=1):
        # Read only for a symbol the instrument table lacks.
        prices = (str(value) for row in rows[:200] for value in (row.open, row.high, row.low, row.close))
        sizes = chain((str(row.volume) for row in rows[:200]), liquidation_sizes.get(symbol, [])[:200])
        instruments[symbol] = derived_instrument(symbol, symbol_id, prices, sizes, rows[0].open)
    return ReplayData(klines, liquidations, instruments)
