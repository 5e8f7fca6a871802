"""Portfolio momentum rules: exact numbers in tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from portfolio import rules


@dataclass(frozen=True)
class Limits:
    qty_step: D
    min_order_qty: D
    max_order_qty: D | None
    max_market_order_qty: D | None
    min_notional_value: D | None


XRP = Limits(D("1"), D("1"), D("2000000"), D("400000"), D("5"))
BTC = Limits(D("0.001"), D("0.001"), D("1190"), D("500"), D("5"))


@pytest.mark.parametrize(
    ("closes", "lookback", "expected"),
    [
        (["100", "105"], 1, "5"),
        (["97000"] * 24 + ["101850"], 24, "5"),
        (["2.5"] * 24 + ["2.75"], 24, "10"),
        (["2.5"] * 30 + ["2.75"], 24, "10"),  # more history than needed: the last 25 count
        (["20", "19"], 1, "-5"),
        (["100", "110", "99"], 1, "-10"),
        (["100", "110", "121"], 2, "21"),
        (["100", "110", "121"], 1, "10"),
        (["100"], 1, None),  # not enough history
        (["2.5"] * 24, 24, None),
        (["0", "5"], 1, None),  # no meaningful reference
    ],
)
def test_momentum_is_the_percent_change_over_the_lookback(closes, lookback, expected):
    result = rules.momentum_pct(closes=[D(c) for c in closes], lookback=lookback)
    assert result == (None if expected is None else D(expected))


MOMENTA = {
    "XRPUSDT": D("10"),
    "DOGEUSDT": D("5"),
    "ADAUSDT": D("2"),
    "LINKUSDT": D("-5"),
    "AVAXUSDT": None,
}


@pytest.mark.parametrize(
    ("held", "max_positions", "enter", "skipped"),
    [
        (
            set(),
            2,
            ["XRPUSDT", "DOGEUSDT"],
            {"ADAUSDT": "no_free_slot", "LINKUSDT": "below_min_momentum", "AVAXUSDT": "no_history"},
        ),
        (
            set(),
            5,
            ["XRPUSDT", "DOGEUSDT", "ADAUSDT"],  # 2 % >= 2 %: qualifies
            {"LINKUSDT": "below_min_momentum", "AVAXUSDT": "no_history"},
        ),
        (
            {"BNBUSDT"},  # held, off the allowlist: still takes a slot
            2,
            ["XRPUSDT"],
            {
                "DOGEUSDT": "no_free_slot",
                "ADAUSDT": "no_free_slot",
                "LINKUSDT": "below_min_momentum",
                "AVAXUSDT": "no_history",
            },
        ),
        (
            {"XRPUSDT"},  # held: neither entered nor reported
            2,
            ["DOGEUSDT"],
            {"ADAUSDT": "no_free_slot", "LINKUSDT": "below_min_momentum", "AVAXUSDT": "no_history"},
        ),
        (
            {"BNBUSDT", "LTCUSDT"},
            2,
            [],
            {
                "XRPUSDT": "no_free_slot",
                "DOGEUSDT": "no_free_slot",
                "ADAUSDT": "no_free_slot",
                "LINKUSDT": "below_min_momentum",
                "AVAXUSDT": "no_history",
            },
        ),
    ],
)
def test_ranking_takes_the_best_qualifying_symbols_for_the_free_slots(held, max_positions, enter, skipped):
    ranking = rules.rank(momenta=MOMENTA, min_momentum_pct=D("2"), held=held, max_positions=max_positions)
    assert [symbol for symbol, _ in ranking.enter] == enter
    assert ranking.skipped == skipped


def test_ranking_breaks_ties_by_symbol_and_keeps_the_momentum():
    ranking = rules.rank(
        momenta={"SOLUSDT": D("5"), "ADAUSDT": D("5"), "ETHUSDT": D("7")},
        min_momentum_pct=D("0"),
        held=(),
        max_positions=3,
    )
    assert ranking.enter == [("ETHUSDT", D("7")), ("ADAUSDT", D("5")), ("SOLUSDT", D("5"))]


@pytest.mark.parametrize(
    ("budget", "max_positions", "max_adds", "expected"),
    [
        ("100", 5, 2, "6.6666"),  # the defaults: 15 legs, cut down to 0.0001 USDT
        ("300", 2, 2, "50.0000"),
        ("1000", 4, 0, "250.0000"),
        ("10", 3, 0, "3.3333"),
        ("250", 1, 4, "50.0000"),
    ],
)
def test_a_leg_is_the_budget_over_every_leg_a_full_book_holds(budget, max_positions, max_adds, expected):
    leg = rules.leg_usdt(budget_usdt=D(budget), max_positions=max_positions, pyramid_max_adds=max_adds)
    assert leg == D(expected) and str(leg) == expected


@pytest.mark.parametrize(
    ("limits", "budget", "committed", "leg", "price", "qty", "notional", "reason"),
    [
        # 50 / (2.75 x 1.002) = 18.14 -> 18 (rounded down), 18 x 2.75 = 49.50
        (XRP, "300", "0", "50", "2.75", "18", "49.50", None),
        # only 20 USDT left: 20 / 2.7555 = 7.26 -> 7
        (XRP, "300", "280", "50", "2.75", "7", "19.25", None),
        (XRP, "300", "300", "50", "2.75", "0", "0", "budget_exhausted"),
        (XRP, "300", "310.5", "50", "2.75", "0", "0", "budget_exhausted"),  # settings shrank
        (XRP, "300", "298", "50", "2.75", "0", "0", "below_min_qty"),  # 2 USDT: not one XRP
        (XRP, "300", "296", "50", "2.75", "0", "0", "below_min_notional"),  # 1 XRP = 2.75 < 5
        (BTC, "100", "0", "6.6666", "97000", "0", "0", "below_min_qty"),
        # 1000 / (97000 x 1.002) = 0.010288 -> 0.010
        (BTC, "10000", "0", "1000", "97000", "0.010", "970.000", None),
        (BTC, "10000", "9500", "1000", "97000", "0.005", "485.000", None),
    ],
)
def test_a_leg_fits_the_budget_left_and_the_instrument(
    limits, budget, committed, leg, price, qty, notional, reason
):
    size = rules.leg_size(
        budget_usdt=D(budget), committed_usdt=D(committed), leg_usdt=D(leg), price=D(price), limits=limits
    )
    assert (size.qty, size.notional, size.reason) == (D(qty), D(notional), reason)
    if reason is None:
        assert str(size.qty) == qty  # the step's exponent, as Bybit wants it


@pytest.mark.parametrize(
    ("price", "last_add_price", "step", "adds_made", "max_adds", "expected"),
    [
        ("2.84", "2.7503", "3", 0, 2, True),  # 2.7503 x 1.03 = 2.832809
        ("2.832809", "2.7503", "3", 0, 2, True),  # exactly the step
        ("2.8328", "2.7503", "3", 0, 2, False),
        ("2.93", "2.8403", "3", 1, 2, True),  # 2.8403 x 1.03 = 2.925509
        ("5.00", "2.9303", "3", 2, 2, False),  # bounded: two adds made
        ("5.00", "2.9303", "3", 0, 0, False),  # pyramiding off
        ("2.60", "2.7503", "3", 0, 2, False),  # a loser gets nothing
    ],
)
def test_pyramiding_adds_each_step_above_the_last_add_and_is_bounded(
    price, last_add_price, step, adds_made, max_adds, expected
):
    assert (
        rules.pyramid_due(
            price=D(price),
            last_add_price=D(last_add_price),
            pyramid_step_pct=D(step),
            adds_made=adds_made,
            max_adds=max_adds,
        )
        is expected
    )


@pytest.mark.parametrize(
    ("high_water", "pct", "stop"),
    [("3.02", "5", "2.869"), ("100", "5", "95"), ("97000", "2.5", "94575"), ("0.35", "10", "0.315")],
)
def test_the_trailing_level_is_below_the_high_water_mark_by_the_percent(high_water, pct, stop):
    assert rules.trailing_stop_price(high_water_price=D(high_water), trailing_stop_pct=D(pct)) == D(stop)


@pytest.mark.parametrize(
    ("price", "high_water", "pct", "expected"),
    [
        ("2.87", "3.02", "5", False),
        ("2.869", "3.02", "5", True),  # at the level
        ("2.86", "3.02", "5", True),
        ("3.10", "3.02", "5", False),  # a new high: the level rises with it
        ("95", "100", "5", True),
        ("95.01", "100", "5", False),
        ("2.7503", "2.7503", "5", False),  # at entry
    ],
)
def test_the_trailing_stop_hits_at_or_below_the_level(price, high_water, pct, expected):
    hit = rules.trailing_stop_hit(price=D(price), high_water_price=D(high_water), trailing_stop_pct=D(pct))
    assert hit is expected


@pytest.mark.parametrize(
    ("previous", "price", "expected"),
    [(None, "5", "5"), ("10", "5", "10"), ("10", "11", "11"), ("10", "10", "10")],
)
def test_the_high_water_mark_only_rises(previous, price, expected):
    assert rules.high_water(previous=None if previous is None else D(previous), price=D(price)) == D(expected)


NOW = datetime(2025, 3, 10, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_scan_at", "interval", "expected"),
    [
        (None, 60, True),
        (NOW - timedelta(minutes=59, seconds=59), 60, False),
        (NOW - timedelta(minutes=60), 60, True),
        (NOW - timedelta(minutes=61), 60, True),
        (NOW - timedelta(minutes=4), 5, False),
        (NOW, 1, False),
    ],
)
def test_a_scan_is_due_an_interval_after_the_last_one(last_scan_at, interval, expected):
    assert rules.scan_due(last_scan_at=last_scan_at, now=NOW, interval_minutes=interval) is expected


@pytest.mark.parametrize(
    ("moment", "bucket"),
    [
        (NOW, "20250310T1200"),
        (datetime(2025, 3, 10, 12, 59, 59, 999999, tzinfo=UTC), "20250310T1259"),
        (datetime(2025, 3, 10, 14, 5, tzinfo=timezone(timedelta(hours=2))), "20250310T1205"),  # to UTC
    ],
)
def test_the_time_bucket_is_the_utc_minute(moment, bucket):
    assert rules.time_bucket(moment) == bucket


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        rules.time_bucket(datetime(2025, 3, 10, 12, 0))
