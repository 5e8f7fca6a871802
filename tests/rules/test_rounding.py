"""Exact-number tables and properties for lot/tick rounding and the order size check."""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.rules import Side
from trading.rules.rounding import (
    ABOVE_MAX_MARKET_QTY,
    ABOVE_MAX_QTY,
    BELOW_MIN_NOTIONAL,
    BELOW_MIN_QTY,
    DOWN,
    PRICE_OFF_TICK,
    QTY_OFF_STEP,
    UP,
    check_order_size,
    check_price_tick,
    limit_price_rounding,
    qty_for_notional,
    round_limit_price,
    round_price,
    round_qty,
    round_stop_loss,
    round_take_profit,
    smallest_valid_qty,
    stop_loss_rounding,
    take_profit_rounding,
)

D = Decimal


@dataclass(frozen=True)
class Lot:
    qty_step: Decimal = D("0.001")
    min_order_qty: Decimal = D("0.001")
    max_order_qty: Decimal | None = D("1190")
    max_market_order_qty: Decimal | None = D("500")
    min_notional_value: Decimal | None = D("5")


BTC = Lot()


@pytest.mark.parametrize(
    ("price", "tick", "direction", "expected"),
    [
        ("234.43", "0.5", DOWN, "234.0"),
        ("234.43", "0.5", UP, "234.5"),
        ("234.5", "0.5", UP, "234.5"),
        ("234.5", "0.5", DOWN, "234.5"),
        ("97000.05", "0.10", DOWN, "97000.00"),
        ("97000.05", "0.10", UP, "97000.10"),
        ("2.50001", "0.0001", UP, "2.5001"),
        ("2.50001", "0.0001", DOWN, "2.5000"),
        ("0.000012345", "0.0000001", DOWN, "0.0000123"),
        ("0.000012345", "0.0000001", UP, "0.0000124"),
        ("1234", "10", DOWN, "1230"),
        ("1234", "10", UP, "1240"),
        ("0", "0.1", UP, "0.0"),
    ],
)
def test_it_rounds_prices_to_the_tick_in_the_given_direction(price, tick, direction, expected):
    rounded = round_price(D(price), D(tick), direction=direction)
    assert rounded == D(expected)
    assert str(rounded) == expected


@pytest.mark.parametrize(
    ("qty", "step", "expected"),
    [
        ("1.23456", "0.001", "1.234"),
        ("0.0019", "0.001", "0.001"),
        ("0.0009", "0.001", "0.000"),
        ("5", "0.01", "5.00"),
        ("15.99", "1", "15"),
        ("999.999", "0.1", "999.9"),
        ("123", "10", "120"),
        ("0.3", "0.1", "0.3"),
    ],
)
def test_it_rounds_quantities_down_to_the_step(qty, step, expected):
    rounded = round_qty(D(qty), D(step))
    assert rounded == D(expected)
    assert str(rounded) == expected


def test_it_refuses_negative_quantities():
    with pytest.raises(ValueError):
        round_qty(D("-1"), D("0.001"))


@pytest.mark.parametrize(
    ("position_side", "price", "stop", "take_profit"),
    [
        # A long's stop rounds up and its take-profit down: both toward the market.
        (Side.BUY, "96123.45", "96123.50", "96123.40"),
        # A short's stop rounds down and its take-profit up.
        (Side.SELL, "96123.45", "96123.40", "96123.50"),
        (Side.BUY, "96123.50", "96123.50", "96123.50"),
    ],
)
def test_it_rounds_protective_prices_toward_the_market(position_side, price, stop, take_profit):
    assert round_stop_loss(D(price), D("0.10"), position_side=position_side) == D(stop)
    assert round_take_profit(D(price), D("0.10"), position_side=position_side) == D(take_profit)


def test_it_rounds_long_stop_up_and_short_stop_down():
    assert stop_loss_rounding(position_side=Side.BUY) is UP
    assert stop_loss_rounding(position_side=Side.SELL) is DOWN
    assert take_profit_rounding(position_side=Side.BUY) is DOWN
    assert take_profit_rounding(position_side=Side.SELL) is UP


@pytest.mark.parametrize(
    ("order_side", "price", "expected"),
    [(Side.BUY, "180.0159", "180.010"), (Side.SELL, "180.0159", "180.020")],
)
def test_it_rounds_limit_prices_against_a_worse_fill(order_side, price, expected):
    assert round_limit_price(D(price), D("0.010"), order_side=order_side) == D(expected)
    assert limit_price_rounding(order_side=order_side) is (DOWN if order_side is Side.BUY else UP)


@pytest.mark.parametrize(
    ("qty", "price", "is_market", "reduce_only", "expected"),
    [
        ("0.001", "97000", True, False, None),
        ("0.0005", "97000", True, False, BELOW_MIN_QTY),
        ("0", "97000", True, False, BELOW_MIN_QTY),
        ("0.0015", "97000", True, False, QTY_OFF_STEP),
        ("0.001", "4000", True, False, BELOW_MIN_NOTIONAL),  # 4 USDT < 5
        ("0.002", "2500", False, False, None),  # exactly 5 USDT is enough
        ("0.001", "4000", True, True, None),  # a close is never refused for its value
        ("0.001", None, True, False, None),  # no price, no notional check
        ("500.001", "97000", True, False, ABOVE_MAX_MARKET_QTY),
        ("500.001", "97000", False, False, None),  # limit orders may go to maxOrderQty
        ("1190.001", "97000", False, False, ABOVE_MAX_QTY),
        ("2000", "97000", True, True, None),  # Bybit splits oversized reduce-only orders
        ("0.0005", "97000", True, True, BELOW_MIN_QTY),
    ],
)
def test_it_checks_order_size(qty, price, is_market, reduce_only, expected):
    reason = check_order_size(
        qty=D(qty),
        price=None if price is None else D(price),
        limits=BTC,
        is_market=is_market,
        reduce_only=reduce_only,
    )
    assert reason == expected


def test_missing_limits_mean_no_limit():
    lot = Lot(max_order_qty=None, max_market_order_qty=None, min_notional_value=None)
    assert check_order_size(qty=D("100000"), price=D("0.0001"), limits=lot, is_market=True) is None


@pytest.mark.parametrize(
    ("price", "tick", "expected"),
    [("97000.10", "0.10", None), ("97000.15", "0.10", PRICE_OFF_TICK), ("0", "0.10", PRICE_OFF_TICK)],
)
def test_it_checks_price_ticks(price, tick, expected):
    assert check_price_tick(price=D(price), tick_size=D(tick)) == expected


@pytest.mark.parametrize(
    ("notional", "price", "step", "expected"),
    [("100", "97000", "0.001", "0.001"), ("1000", "3300", "0.01", "0.30"), ("50", "2.5", "1", "20")],
)
def test_it_sizes_by_notional_rounding_down(notional, price, step, expected):
    assert qty_for_notional(notional=D(notional), price=D(price), qty_step=D(step)) == D(expected)


@pytest.mark.parametrize(
    ("price", "expected"),
    [("97000", "0.001"), ("4000", "0.002"), ("2500", "0.002"), ("1", "5.000")],
)
def test_smallest_valid_qty_meets_both_minimums(price, expected):
    qty = smallest_valid_qty(price=D(price), limits=BTC)
    assert qty == D(expected)
    no_max = Lot(max_market_order_qty=None)
    assert check_order_size(qty=qty, price=D(price), limits=no_max, is_market=True) is None


# -- properties ---------------------------------------------------------------

steps = st.sampled_from(["1", "0.1", "0.01", "0.001", "0.0001", "10", "0.5", "0.25"]).map(D)
quantities = st.decimals(min_value=D("0"), max_value=D("100000"), places=6)
prices = st.decimals(min_value=D("0.0001"), max_value=D("200000"), places=4)


@given(qty=quantities, step=steps)
def test_rounded_qty_is_a_step_multiple_never_above_the_input(qty, step):
    rounded = round_qty(qty, step)
    assert rounded % step == 0
    assert rounded <= qty
    assert qty - rounded < step


@given(price=prices, tick=steps)
def test_rounded_price_brackets_the_input_within_one_tick(price, tick):
    up = round_price(price, tick, direction=UP)
    down = round_price(price, tick, direction=DOWN)
    assert up % tick == 0 and down % tick == 0
    assert down <= price <= up
    assert up - down in (0, tick)


@given(
    qty=quantities,
    price=prices,
    step=steps,
    min_qty_steps=st.integers(min_value=1, max_value=5),
    min_notional=st.sampled_from(["0", "1", "5", "100"]).map(D),
)
def test_a_rounded_order_is_refused_iff_below_min_qty_or_notional(
    qty, price, step, min_qty_steps, min_notional
):
    lot = Lot(
        qty_step=step,
        min_order_qty=step * min_qty_steps,
        max_order_qty=None,
        max_market_order_qty=None,
        min_notional_value=min_notional,
    )
    rounded = round_qty(qty, step)
    reason = check_order_size(qty=rounded, price=price, limits=lot, is_market=True)
    too_small = rounded < lot.min_order_qty or rounded == 0 or rounded * price < min_notional
    assert (reason is not None) == too_small
    assert reason in (None, BELOW_MIN_QTY, BELOW_MIN_NOTIONAL)
