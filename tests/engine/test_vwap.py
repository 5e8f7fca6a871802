"""Rolling VWAP and the market view: exact numbers."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from tests.support.resources import BINANCE_REPLAY
from trading.rules.vwap import MINUTE_MS, Candle, MarketState, RollingVwap

T0 = 1_737_996_300_000  # 2025-01-27 16:45 UTC, a minute boundary


def candle(minute: int, volume: str, turnover: str, *, confirmed: bool = True, close: str = "100") -> Candle:
    price = Decimal(close)
    return Candle(
        start_ms=T0 + minute * MINUTE_MS,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal(volume),
        turnover=Decimal(turnover),
        confirmed=confirmed,
    )


@pytest.mark.parametrize(
    ("window", "candles", "expected"),
    [
        # turnover / volume
        (3, [("1", "100")], "100"),
        (3, [("1", "100"), ("3", "330")], "107.5"),  # 430 / 4
        (3, [("2", "200"), ("1", "110"), ("1", "130")], "110"),  # 440 / 4
        # Window 2: the first minute drops out when the third begins.
        (2, [("2", "200"), ("1", "110"), ("1", "130")], "120"),  # 240 / 2
        # Window 1: only the newest minute.
        (1, [("2", "200"), ("4", "404")], "101"),
        # A quiet minute adds nothing.
        (3, [("2", "200"), ("0", "0"), ("2", "204")], "101"),
        # Quiet window: no VWAP at all.
        (2, [("5", "500"), ("0", "0"), ("0", "0")], None),
        (3, [], None),
    ],
)
def test_vwap_exact_values(window, candles, expected):
    vwap = RollingVwap(window)
    for minute, (volume, turnover) in enumerate(candles):
        vwap.update(candle(minute, volume, turnover))
    assert vwap.value == (Decimal(expected) if expected is not None else None)


def test_the_open_candle_is_replaced_not_added():
    vwap = RollingVwap(5)
    vwap.update(candle(0, "2", "200"))
    vwap.update(candle(1, "1", "103", confirmed=False))
    assert vwap.value == Decimal("101")  # 303 / 3
    vwap.update(candle(1, "2", "212", confirmed=False))  # the same minute, more trades
    assert vwap.value == Decimal("103")  # 412 / 4
    vwap.update(candle(1, "3", "318", confirmed=True))  # the minute closes
    assert vwap.value == Decimal("103.6")  # 518 / 5
    assert [c.start_ms for c in vwap.candles()] == [T0, T0 + MINUTE_MS]


def test_a_missed_confirm_closes_the_open_candle_when_the_next_minute_starts():
    vwap = RollingVwap(5)
    vwap.update(candle(0, "1", "100", confirmed=False))
    vwap.update(candle(1, "1", "110", confirmed=False))
    assert vwap.value == Decimal("105")
    assert [(c.start_ms, c.confirmed) for c in vwap.candles()] == [(T0, False), (T0 + MINUTE_MS, False)]


def test_late_and_echoed_candles_are_ignored():
    vwap = RollingVwap(5)
    vwap.update(candle(0, "1", "100"))
    vwap.update(candle(1, "1", "110", confirmed=False))
    vwap.update(candle(0, "9", "9000"))  # late re-send of an older minute
    vwap.update(candle(1, "1", "120", confirmed=True))
    vwap.update(candle(1, "5", "5000", confirmed=False))  # stale open-state echo of a closed minute
    assert vwap.value == Decimal("110")  # (100 + 120) / 2


def test_a_closed_minute_resent_closed_replaces_it():
    vwap = RollingVwap(5)
    vwap.update(candle(0, "1", "100"))
    vwap.update(candle(1, "1", "110"))
    vwap.update(candle(1, "1", "112"))  # REST said 110, the stream says 112: the later word wins
    assert vwap.value == Decimal("106")


def test_a_gap_in_minutes_evicts_by_start_time_not_by_count():
    vwap = RollingVwap(3)
    vwap.update(candle(0, "1", "100"))
    vwap.update(candle(1, "1", "102"))
    vwap.update(candle(3, "1", "110"))  # minute 2 missing: minute 0 is out, minute 1 still in
    assert [c.start_ms for c in vwap.candles()] == [T0 + MINUTE_MS, T0 + 3 * MINUTE_MS]
    assert vwap.value == Decimal("106")


def test_updates_stay_exact_over_a_long_run():
    # A day of minutes through a 60-minute window: the running sums must not drift.
    vwap = RollingVwap(60)
    for minute in range(1440):
        vwap.update(candle(minute, "0.001", f"{100000 + minute}.123", confirmed=False))
        vwap.update(candle(minute, "0.003", f"{300000 + minute}.369"))
    window = range(1380, 1440)
    turnover = sum(Decimal(f"{300000 + m}.369") for m in window)
    assert vwap.value == turnover / Decimal("0.180")
    assert len(vwap.candles()) == 60


def _binance_klines(path) -> list[Candle]:
    with open(path, newline="") as handle:
        return [
            Candle(
                start_ms=int(row["open_time"]),
                open=Decimal(row["open"]),
                high=Decimal(row["high"]),
                low=Decimal(row["low"]),
                close=Decimal(row["close"]),
                volume=Decimal(row["volume"]),
                turnover=Decimal(row["quote_volume"]),
                confirmed=True,
            )
            for row in csv.DictReader(handle)
        ]


@pytest.mark.parametrize(
    ("window", "upto", "expected"),
    [
        (60, 41, "99626.77905435490275656479051"),  # all 41 minutes: 1092131765.77980 / 10962.231
        (5, 41, "99150.52457119284519640543118"),  # 154787155.87540 / 1561.133
        (15, 41, "99335.02178794249847725174859"),  # 342967970.29090 / 3452.639
        (5, 10, "99766.49075905300212097320467"),  # minutes 5..9: 143748348.67720 / 1440.848
    ],
)
def test_vwap_of_real_btcusdt_minutes(window, upto, expected):
    candles = _binance_klines(BINANCE_REPLAY / "klines" / "BTCUSDT.csv")
    assert len(candles) == 41
    vwap = RollingVwap(window)
    for each in candles[:upto]:
        vwap.update(each)
    assert vwap.value == Decimal(expected)
    # And it lies within the window's price range, as a VWAP must.
    kept = candles[max(0, upto - window) : upto]
    assert min(c.low for c in kept) <= vwap.value <= max(c.high for c in kept)


def test_market_state_tracks_price_age_and_windows():
    market = MarketState()
    market.watch("BTCUSDT", [1, 3])
    assert market.get("ETHUSDT") is None
    view = market.get("BTCUSDT")
    assert view.is_stale(now_ms=0, max_age_ms=10_000)  # no price yet
    market.apply_price("BTCUSDT", None, at_ms=500)  # a delta before any price: still nothing
    assert view.last_price is None and view.is_stale(now_ms=500, max_age_ms=10_000)
    market.apply_price("BTCUSDT", Decimal("100.5"), at_ms=1_000)
    market.apply_price("BTCUSDT", None, at_ms=4_000)  # a delta without lastPrice: unchanged, but current
    assert (view.last_price, view.last_price_ms) == (Decimal("100.5"), 4_000)
    assert not view.is_stale(now_ms=14_000, max_age_ms=10_000)
    assert view.is_stale(now_ms=14_001, max_age_ms=10_000)
    assert market.is_stale("ETHUSDT", now_ms=0, max_age_ms=10_000)

    market.apply_candles(
        "BTCUSDT", [candle(0, "1", "100"), candle(1, "1", "110"), candle(2, "2", "240")], at_ms=5_000
    )
    assert view.vwap(1) == Decimal("120")
    assert view.vwap(3) == Decimal("112.5")  # 450 / 4
    assert view.vwap(60) is None  # not tracked
    assert view.last_candle_ms == 5_000
    market.apply_candles("ETHUSDT", [candle(0, "1", "100")], at_ms=5_000)  # unwatched: dropped
    assert market.get("ETHUSDT") is None


def test_a_new_window_is_filled_from_the_history_already_held():
    market = MarketState()
    market.watch("BTCUSDT", [5])
    market.apply_candles("BTCUSDT", [candle(m, "1", str(100 + m)) for m in range(5)], at_ms=1)
    market.watch("BTCUSDT", [2, 5])
    assert market.get("BTCUSDT").vwap(2) == Decimal("103.5")
    assert market.get("BTCUSDT").windows == (2, 5)
    market.configure({"ETHUSDT": [60]})
    assert market.symbols() == ["ETHUSDT"]


def test_window_must_be_positive():
    with pytest.raises(ValueError):
        RollingVwap(0)
