"""risk.rules for transfers: deposits, withdrawals and transfers are not PnL. Exact numbers in tables,
and Hypothesis for "a transfer moves no figure"."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from risk.rules import (
    DailyFigures,
    daily_pnl,
    day_outcome,
    is_transfer,
    limit_equities,
    transfer_amount,
    transfer_value,
    transfers_net,
)


@pytest.mark.parametrize(
    ("baseline", "equity", "net", "pnl_usdt", "pnl_pct"),
    [
        ("1000", "1200", "200", "0.0000", "0.0000"),  # a 20 % deposit, nothing else
        ("1000", "800", "-200", "0.0000", "0.0000"),  # a 20 % withdrawal
        ("1000", "1150", "200", "-50.0000", "-5.0000"),  # a deposit, then a real 5 % loss
        ("1000", "750", "-200", "-50.0000", "-5.0000"),  # a withdrawal, then the same loss
        ("1000", "1299.9999", "200", "99.9999", "9.9999"),  # still cut toward zero
        ("10000", "9999.5", "-0.4", "-0.1000", "-0.0010"),
    ],
)
def test_daily_pnl_takes_the_net_transfers_out_of_the_equity_change(baseline, equity, net, pnl_usdt, pnl_pct):
    figures = daily_pnl(baseline=D(baseline), equity=D(equity), net_transfers=D(net))
    assert figures == DailyFigures(pnl_usdt=D(pnl_usdt), pnl_pct=D(pnl_pct))


def test_the_limit_equities_move_with_the_net_transfers():
    assert limit_equities(
        baseline=D("1000"), target_pct=D("10"), stop_pct=D("5"), net_transfers=D("200")
    ) == (
        D("1300"),
        D("1150"),
    )
    assert limit_equities(
        baseline=D("1000"), target_pct=D("10"), stop_pct=D("5"), net_transfers=D("-200")
    ) == (
        D("900"),
        D("750"),
    )


money = st.decimals(
    min_value=D("-100000"), max_value=D("100000"), places=4, allow_nan=False, allow_infinity=False
)
baselines = st.decimals(min_value=D("1"), max_value=D("100000"), places=4)


@given(baseline=baselines, equity=money, transferred=money, earlier=money)
def test_a_transfer_moves_neither_figure_nor_the_outcome(baseline, equity, transferred, earlier):
    before = daily_pnl(baseline=baseline, equity=equity, net_transfers=earlier)
    after = daily_pnl(baseline=baseline, equity=equity + transferred, net_transfers=earlier + transferred)
    assert after == before
    assert day_outcome(pnl_pct=after.pnl_pct, target_pct=D("10"), stop_pct=D("5")) == day_outcome(
        pnl_pct=before.pnl_pct, target_pct=D("10"), stop_pct=D("5")
    )


@given(baseline=baselines, net=money)
def test_the_limit_equities_are_where_the_figures_reach_the_limits(baseline, net):
    target, stop = limit_equities(baseline=baseline, target_pct=D("10"), stop_pct=D("5"), net_transfers=net)
    assert daily_pnl(baseline=baseline, equity=target, net_transfers=net).pnl_pct == D("10")
    assert daily_pnl(baseline=baseline, equity=stop, net_transfers=net).pnl_pct == D("-5")


@pytest.mark.parametrize(
    ("log_type", "change", "cash_flow", "amount"),
    [
        ("TRANSFER_IN", "200", "200", "200"),
        ("TRANSFER_OUT", "-200", "-200", "-200"),
        ("TRANSFER_OUT", "200", "200", "-200"),  # the docs give no sign: the type says out
        ("TRANSFER_IN", "0", "150", "150"),  # no change shown: the cash flow
        ("BONUS_TRANSFER_OUT", "-5", "-5", "-5"),
        ("PREMARKET_TRANSFER_OUT", "-7", "-7", "-7"),
        ("FLEXIBLE_STAKING_SUBSCRIPTION", "-300", "-300", "-300"),  # out to an earn product
        ("FLEXIBLE_STAKING_REDEMPTION", "301", "301", "301"),  # and back
        ("TRADE", "-5.3", "0", "0"),  # PnL, not a transfer
        ("SETTLEMENT", "-0.003676", "0", "0"),
        ("LIQUIDATION", "-90", "-90", "0"),
        ("BONUS", "10", "10", "0"),
    ],
)
def test_transfer_amounts_count_money_moved_in_or_out_and_nothing_else(log_type, change, cash_flow, amount):
    assert transfer_amount(log_type=log_type, change=D(change), cash_flow=D(cash_flow)) == D(amount)
    assert is_transfer(log_type) == (amount != "0")


@pytest.mark.parametrize(
    ("amount", "currency", "prices", "value"),
    [
        ("200", "USDT", {}, "200.0000"),  # the wallet shows no USDT: 1
        ("-200", "USDT", {"USDT": D("0.9998")}, "-199.9600"),  # the wallet's own price
        ("1000", "USDC", {}, "1000.0000"),
        ("0.01", "BTC", {"BTC": D("60000")}, "600.0000"),
        ("0.0000333", "BTC", {"BTC": D("60000.5")}, "1.9980"),  # half-even at four places
        ("0.5", "ETH", {"BTC": D("60000")}, None),  # no price: not valued
    ],
)
def test_transfer_values_are_in_usdt_at_the_wallets_price(amount, currency, prices, value):
    result = transfer_value(amount=D(amount), currency=currency, prices=prices)
    assert result == (None if value is None else D(value))
    assert value is None or str(result) == value


def test_the_net_counts_only_transfers_the_equity_read_already_shows():
    values = [(1_000, D("200")), (2_000, D("-50")), (3_000, D("75"))]
    assert transfers_net(values, until_ms=999) == 0
    assert transfers_net(values, until_ms=2_000) == D("150")
    assert transfers_net(values, until_ms=3_000) == D("225")
