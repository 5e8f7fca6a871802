"""The backtest's laid-out price path: the simulator's order; a view caught up late as one fed each step."""

from __future__ import annotations

from decimal import Decimal

import pytest

from controlpanel.backtest.tape import MINUTE_MS, CatchUpMarket, SymbolKlines, price_slots
from simulator.numbers import round_to_step
from simulator.replay import KlineRow, PricePoint, load
from tests.support import REPO
from trading.rules.vwap import Candle, SymbolMarket

SAMPLE = REPO / "sample_data"


def test_the_slots_play_every_price_step_in_the_simulators_timeline_order():
    data = load(SAMPLE)
    expected = [
        (event.time_ms, event.symbol, event.price, event.size, event.side)
        for event in data.timeline()
        if type(event) is PricePoint
    ]
    klines = {symbol: SymbolKlines(symbol, rows, Decimal("0.0001")) for symbol, rows in data.klines.items()}
    played = [
        (time_ms, symbol, *klines[symbol].path(row)[step][1:])
        for time_ms, step, members in price_slots(data.klines)
        for symbol, row in members
    ]
    assert len(played) == 14_400
    assert played == expected


def row(minute: int, open_: str, high: str, low: str, close: str, volume: str) -> KlineRow:
    return KlineRow(minute * MINUTE_MS, *(Decimal(value) for value in (open_, high, low, close, volume)))


ROWS = [
    row(0, "100.04", "101.26", "99.5", "100.5", "8"),
    row(1, "100.5", "100.9", "98.1", "98.77", "4"),
    row(3, "98.7", "99.0", "97.0", "98.9", "12"),  # minute 2 has no kline
    row(4, "98.9", "102.0", "98.8", "101.0", "2"),
    row(5, "101.0", "101.5", "100.0", "100.2", "6"),
]
TICK = Decimal("0.1")


def fed_every_step(rows: list[KlineRow], window: int, until_ms: int) -> SymbolMarket:
    """The engine's view as the kline and ticker streams feed it: every step, the minute's candle."""
    market = SymbolMarket("BTCUSDT")
    market.set_windows([window])
    klines = SymbolKlines("BTCUSDT", rows, TICK)
    for index, kline in enumerate(rows):
        for time_ms, raw_price, size, _side in klines.path(index):
            if time_ms > until_ms:
                return market
            price = round_to_step(raw_price, TICK)
            if time_ms % MINUTE_MS == 0:
                open_, high, low, volume, turnover = price, price, price, size, size * price
            else:
                high, low = max(high, price), min(low, price)
                volume, turnover = volume + size, turnover + size * price
            market.apply_candle(
                Candle(kline.open_time, open_, high, low, price, volume, turnover, False), time_ms
            )
            market.apply_price(price, time_ms)
    return market


@pytest.mark.parametrize("window", [1, 2, 60])
def test_a_market_caught_up_at_decisions_equals_one_fed_every_step(window):
    market = SymbolMarket("BTCUSDT")
    market.set_windows([window])
    caught_up = CatchUpMarket(market, SymbolKlines("BTCUSDT", ROWS, TICK), played_from_ms=-1)
    for now_ms in (10_000, 30_000, 59_000, 125_000, 200_000, 260_000, 299_999, 340_000, 400_000):
        every_step = fed_every_step(ROWS, window, now_ms)
        view = caught_up.at(now_ms)
        assert view.vwap(window) == every_step.vwap(window), now_ms
        assert view.last_price == every_step.last_price
        assert view.last_price_ms == every_step.last_price_ms
        assert view.last_candle_ms == every_step.last_candle_ms
    assert market.vwap(window) is not None


def test_klines_that_are_not_one_row_a_minute_are_refused():
    with pytest.raises(ValueError, match="one row a minute"):
        SymbolKlines("BTCUSDT", [ROWS[0], row(0, "1", "1", "1", "1", "1")], TICK)
    misaligned = KlineRow(30_000, *(Decimal("1"),) * 5)
    with pytest.raises(ValueError, match="one row a minute"):
        SymbolKlines("BTCUSDT", [misaligned], TICK)
