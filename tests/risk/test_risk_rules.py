"""risk.rules: exact numbers in tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from risk.rules import (
    DailyFigures,
    DayOutcome,
    ImAction,
    TpSl,
    daily_pnl,
    day_outcome,
    equity_estimate,
    im_action,
    im_pct_estimate,
    limit_equities,
    next_utc_midnight,
    reduce_qty,
    tpsl_crossed,
    tpsl_needs_setting,
    tpsl_prices,
    utc_date,
)
from trading.rules import Side

LONG, SHORT = Side.BUY, Side.SELL


@pytest.mark.parametrize(
    ("baseline", "equity", "pnl_usdt", "pnl_pct"),
    [
        ("10000", "10000", "0.0000", "0.0000"),
        ("10000", "11000", "1000.0000", "10.0000"),
        ("10000", "9500", "-500.0000", "-5.0000"),
        ("350", "385", "35.0000", "10.0000"),
        ("10000", "10999.9999", "999.9999", "9.9999"),  # 9.999999 % is cut, never rounded up to 10
        ("10000", "9500.0001", "-499.9999", "-4.9999"),  # -4.999999 % is cut toward zero
        ("9993.1234", "10992.4357", "999.3123", "9.9999"),
        ("3", "2", "-1.0000", "-33.3333"),
        ("3", "4", "1.0000", "33.3333"),
        ("10000", "10000.00005", "0.0000", "0.0000"),
    ],
)
def test_daily_pnl_is_cut_toward_zero_at_four_places(baseline, equity, pnl_usdt, pnl_pct):
    figures = daily_pnl(baseline=D(baseline), equity=D(equity))
    assert figures == DailyFigures(pnl_usdt=D(pnl_usdt), pnl_pct=D(pnl_pct))
    assert str(figures.pnl_pct) == pnl_pct


@pytest.mark.parametrize("baseline", ["0", "-1"])
def test_daily_pnl_refuses_a_baseline_that_is_not_positive(baseline):
    with pytest.raises(ValueError):
        daily_pnl(baseline=D(baseline), equity=D("100"))


@pytest.mark.parametrize(
    ("pnl_pct", "target", "stop", "outcome"),
    [
        ("0", "10", "5", DayOutcome.OPEN),
        ("9.9999", "10", "5", DayOutcome.OPEN),
        ("10", "10", "5", DayOutcome.TARGET_HIT),
        ("10.0001", "10", "5", DayOutcome.TARGET_HIT),
        ("57", "10", "5", DayOutcome.TARGET_HIT),
        ("-4.9999", "10", "5", DayOutcome.OPEN),
        ("-5", "10", "5", DayOutcome.STOP_HIT),
        ("-5.0001", "10", "5", DayOutcome.STOP_HIT),
        ("-100", "10", "5", DayOutcome.STOP_HIT),
        ("2.5", "2.5", "1", DayOutcome.TARGET_HIT),
        ("-0.75", "3", "0.75", DayOutcome.STOP_HIT),
    ],
)
def test_the_day_is_decided_against_plus_target_and_minus_stop(pnl_pct, target, stop, outcome):
    assert day_outcome(pnl_pct=D(pnl_pct), target_pct=D(target), stop_pct=D(stop)) is outcome


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        (datetime(2025, 3, 10, 12, 0, tzinfo=UTC), datetime(2025, 3, 11, tzinfo=UTC)),
        (datetime(2025, 3, 10, 0, 0, tzinfo=UTC), datetime(2025, 3, 11, tzinfo=UTC)),
        (datetime(2025, 3, 10, 23, 59, 59, 999999, tzinfo=UTC), datetime(2025, 3, 11, tzinfo=UTC)),
        (datetime(2024, 2, 28, 8, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2025, 12, 31, 18, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        # 01:30 in UTC+3 is still the previous UTC day.
        (
            datetime(2025, 3, 11, 1, 30, tzinfo=timezone(timedelta(hours=3))),
            datetime(2025, 3, 11, tzinfo=UTC),
        ),
        # 22:00 in UTC-5 is already the next UTC day.
        (
            datetime(2025, 3, 10, 22, 0, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2025, 3, 12, tzinfo=UTC),
        ),
    ],
)
def test_the_next_utc_midnight(now, midnight):
    assert next_utc_midnight(now) == midnight
    assert next_utc_midnight(now).tzinfo is UTC


def test_utc_date_refuses_naive_times():
    assert utc_date(datetime(2025, 3, 10, 23, tzinfo=timezone(timedelta(hours=-2)))) == date(2025, 3, 11)
    with pytest.raises(ValueError):
        utc_date(datetime(2025, 3, 10, 12))


@pytest.mark.parametrize(
    ("im_pct", "warn", "reduce", "action"),
    [
        ("0", "80", "100", ImAction.NONE),
        ("79.9999", "80", "100", ImAction.NONE),
        ("80", "80", "100", ImAction.WARN),
        ("99.99", "80", "100", ImAction.WARN),
        ("100", "80", "100", ImAction.REDUCE),
        ("250", "80", "100", ImAction.REDUCE),
        ("Infinity", "80", "100", ImAction.REDUCE),  # margin in use and no equity
        ("60", "50", "70", ImAction.WARN),
        ("70", "50", "70", ImAction.REDUCE),
    ],
)
def test_the_im_ladder(im_pct, warn, reduce, action):
    assert im_action(im_pct=D(im_pct), warn_pct=D(warn), reduce_pct=D(reduce)) is action


@pytest.mark.parametrize(
    ("size", "fraction", "step", "min_qty", "qty"),
    [
        ("0.100", "0.20", "0.001", "0.001", "0.020"),
        ("0.080", "0.20", "0.001", "0.001", "0.016"),
        ("0.013", "0.20", "0.001", "0.001", "0.002"),  # 0.0026 rounds DOWN
        ("1.37", "0.20", "0.01", "0.01", "0.27"),  # 0.274
        ("7", "0.20", "1", "1", "1"),  # 1.4
        ("4", "0.20", "1", "1", "4"),  # 0.8 -> 0 < min qty: the whole position
        ("0.004", "0.20", "0.001", "0.001", "0.004"),  # 0.0008 -> whole
        ("0.5", "0.20", "0.1", "0.1", "0.1"),
        ("0.4", "0.20", "0.1", "0.1", "0.4"),  # 0.08 -> whole
        ("10", "0.20", "1", "5", "10"),  # 2 is below a min qty of 5 -> whole
        ("0.100", "1", "0.001", "0.001", "0.100"),  # fraction 1: everything
        ("0.0105", "0.5", "0.001", "0.001", "0.005"),  # a size off the step still rounds down
    ],
)
def test_the_reduce_qty_rounds_down_or_takes_the_whole_position(size, fraction, step, min_qty, qty):
    result = reduce_qty(size=D(size), fraction=D(fraction), qty_step=D(step), min_order_qty=D(min_qty))
    assert result == D(qty)
    assert str(result) == qty


@pytest.mark.parametrize(("size", "fraction"), [("0", "0.2"), ("1", "0"), ("1", "1.5"), ("-1", "0.2")])
def test_the_reduce_qty_refuses_nonsense(size, fraction):
    with pytest.raises(ValueError):
        reduce_qty(size=D(size), fraction=D(fraction), qty_step=D("0.001"), min_order_qty=D("0.001"))


@pytest.mark.parametrize(
    ("side", "avg", "tp_pct", "sl_pct", "tick", "tp", "sl"),
    [
        # long: TP above (rounded down), SL below (rounded up)
        (LONG, "97000", "1.5", "0.8", "0.10", "98455.00", "96224.00"),
        (LONG, "97009.70", "1.5", "0.8", "0.10", "98464.80", "96233.70"),  # 98464.8455 / 96233.6224
        (LONG, "2.5123", "3", "2", "0.0001", "2.5876", "2.4621"),  # 2.587669 / 2.462054
        (LONG, "180.123", "10", "5", "0.010", "198.130", "171.120"),  # 198.1353 / 171.11685
        # short: TP below (rounded up), SL above (rounded down)
        (SHORT, "3299.67", "2", "1", "0.01", "3233.68", "3332.66"),  # 3233.6766 / 3332.6667
        (SHORT, "97000", "1.5", "0.8", "0.10", "95545.00", "97776.00"),
        (SHORT, "0.33117", "4", "2.5", "0.00001", "0.31793", "0.33944"),  # 0.3179232 / 0.33944925
        # a short's TP at 100 % or more would be price 0 ("no TP" to Bybit): none
        (SHORT, "100", "100", "1", "0.01", None, "101.00"),
        (SHORT, "100", "99.999", "1", "0.01", "0.01", "101.00"),  # 0.001 rounds UP to one tick
    ],
)
def test_tpsl_prices_sit_on_the_right_side_rounded_toward_the_market(side, avg, tp_pct, sl_pct, tick, tp, sl):
    prices = tpsl_prices(
        position_side=side,
        avg_price=D(avg),
        take_profit_pct=D(tp_pct),
        stop_loss_pct=D(sl_pct),
        tick_size=D(tick),
    )
    assert prices == TpSl(take_profit=None if tp is None else D(tp), stop_loss=D(sl))
    assert str(prices.stop_loss) == sl


WANTED = TpSl(take_profit=D("98464.80"), stop_loss=D("96233.70"))


@pytest.mark.parametrize(
    ("tp", "sl", "needs"),
    [
        (None, None, True),
        ("98464.80", None, True),
        (None, "96233.70", True),
        ("98464.80", "96233.70", False),
        ("98464.70", "96233.80", False),  # one tick off: the same level rounded another way
        ("98464.90", "96233.60", False),
        ("98464.60", "96233.70", True),  # two ticks off
        ("98464.80", "96233.90", True),
        ("98455.00", "96224.00", True),  # levels from another entry price
    ],
)
def test_tpsl_need_setting_when_missing_or_off_by_more_than_a_tick(tp, sl, needs):
    current_tp = None if tp is None else D(tp)
    current_sl = None if sl is None else D(sl)
    assert (
        tpsl_needs_setting(take_profit=current_tp, stop_loss=current_sl, wanted=WANTED, tick_size=D("0.10"))
        is needs
    )


def test_without_a_wanted_take_profit_only_the_stop_is_checked():
    wanted = TpSl(take_profit=None, stop_loss=D("101.00"))
    assert not tpsl_needs_setting(take_profit=None, stop_loss=D("101.00"), wanted=wanted, tick_size=D("0.01"))
    assert tpsl_needs_setting(take_profit=None, stop_loss=None, wanted=wanted, tick_size=D("0.01"))


@pytest.mark.parametrize(
    ("side", "tp", "sl", "last", "crossed"),
    [
        (LONG, "110", "95", "100", None),
        (LONG, "110", "95", "95", "stop_loss"),
        (LONG, "110", "95", "90", "stop_loss"),
        (LONG, "110", "95", "110", "take_profit"),
        (LONG, "110", "95", "120", "take_profit"),
        (SHORT, "90", "105", "100", None),
        (SHORT, "90", "105", "105", "stop_loss"),
        (SHORT, "90", "105", "90", "take_profit"),
        (SHORT, None, "105", "1", None),
    ],
)
def test_a_level_the_price_already_reached_is_reported(side, tp, sl, last, crossed):
    wanted = TpSl(take_profit=None if tp is None else D(tp), stop_loss=D(sl))
    assert tpsl_crossed(position_side=side, wanted=wanted, last_price=D(last)) == crossed


@pytest.mark.parametrize(
    ("baseline", "target_pct", "stop_pct", "target_equity", "stop_equity"),
    [
        ("10000", "10", "5", "11000", "9500"),
        ("1234.56", "2.5", "1.25", "1265.4240", "1219.128000"),
    ],
)
def test_limit_equities_are_the_baseline_moved_by_the_target_and_the_stop(
    baseline, target_pct, stop_pct, target_equity, stop_equity
):
    target, stop = limit_equities(baseline=D(baseline), target_pct=D(target_pct), stop_pct=D(stop_pct))
    assert (target, stop) == (D(target_equity), D(stop_equity))


def test_the_equity_estimate_is_the_wallet_without_upl_plus_each_legs_upl():
    legs = [
        (D("0.1"), D("97000"), D("96000")),
        (D("-2"), D("3300"), D("3250")),
    ]
    assert equity_estimate(base=D("10000"), positions=legs) == D("10000") - 100 + 100


def test_the_im_rate_estimate_is_initial_margin_over_the_moved_margin_balance():
    legs = [(D("1"), D("100"), D("90"))]  # -10 on a 1,010 balance
    assert im_pct_estimate(initial_margin=D("500"), margin_base=D("1010"), positions=legs) == 50
    broke = [(D("1"), D("2000"), D("900"))]
    assert im_pct_estimate(initial_margin=D("1"), margin_base=D("1000"), positions=broke).is_infinite()
    assert im_pct_estimate(initial_margin=D("0"), margin_base=D("0"), positions=[]) == 0
