"""The pure rules behind realised PnL per strategy: fees, attribution and the day sums."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from risk.rules import (
    PnlSum,
    close_fee_share,
    closed_pnl_strategy,
    closed_side,
    open_fee_of,
    pnl_sums_by_day,
    pnl_sums_total,
)
from trading.rules import Side


@pytest.mark.parametrize(
    ("order_fee", "order_qty", "closed_qty", "share"),
    [
        ("0.5335", "0.010", "0.010", "0.5335"),  # the whole order closed
        ("1.00000003", "0.30", "0.10", "0.33333334"),  # it also opened 0.20 the other way: a third
        ("0.5", "0", "0.010", "0"),  # nothing filled
    ],
)
def test_the_close_fee_is_the_closing_orders_share(order_fee, order_qty, closed_qty, share):
    assert close_fee_share(order_fee=D(order_fee), order_qty=D(order_qty), closed_qty=D(closed_qty)) == D(
        share
    )


@pytest.mark.parametrize(
    ("side", "entry", "exit", "pnl", "close_fee", "open_fee"),
    [
        ("long", "970", "985", "13.9235", "0.54175", "0.53475"),  # 15 gross
        ("short", "1970", "1960", "8.8405", "0.539", "0.6205"),  # 10 gross
    ],
)
def test_the_open_fee_is_what_closed_pnl_nets_out_besides_the_close_fee(
    side, entry, exit, pnl, close_fee, open_fee
):
    assert open_fee_of(
        side=side, entry_value=D(entry), exit_value=D(exit), closed_pnl=D(pnl), close_fee=D(close_fee)
    ) == D(open_fee)


def test_a_sell_closes_a_long():
    assert (closed_side(Side.SELL), closed_side(Side.BUY)) == ("long", "short")


@pytest.mark.parametrize(
    ("link", "journal_owner", "strategy"),
    [
        ("wl-entry-BTC-0123456789abcdef", None, "WL"),
        ("pm-exit-ETH-0123456789abcdef", "WL", "PM"),  # the order's own prefix wins
        ("", "WL", "WL"),  # Bybit's TP/SL
        ("risk-reduce-ETH-0123456789abcdef", "PM", "PM"),
        ("panic-close-ETH-0123456789abcdef", None, "manual"),
        ("pm-by-hand", None, "manual"),  # not our shape
        ("", None, "manual"),
    ],
)
def test_a_close_belongs_to_its_orders_strategy_else_the_positions_owner(link, journal_owner, strategy):
    assert closed_pnl_strategy(closing_link_id=link, journal_owner=journal_owner) == strategy


def test_day_sums_have_every_day_and_strategy_and_totals_count_from_a_day():
    days = [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    closes = [
        (date(2026, 12, 1), "WL", D("5"), D("0.5")),
        (date(2026, 12, 3), "WL", D("-2"), D("0.25")),
        (date(2026, 12, 3), "WL", D("1"), D("0.25")),
        (date(2026, 12, 3), "manual", D("3"), D("0.1")),
        (date(2026, 11, 30), "PM", D("100"), D("1")),  # before the period: left out
    ]
    by_day = pnl_sums_by_day(closes, days=days)
    assert by_day[date(2026, 12, 2)] == {"WL": PnlSum(), "PM": PnlSum(), "manual": PnlSum()}
    assert by_day[date(2026, 12, 3)]["WL"] == PnlSum(pnl=D("-1"), fees=D("0.50"), closes=2)
    totals = pnl_sums_total(by_day, since=date(2026, 12, 2))
    assert totals == {
        "WL": PnlSum(pnl=D("-1"), fees=D("0.50"), closes=2),
        "PM": PnlSum(),
        "manual": PnlSum(pnl=D("3"), fees=D("0.1"), closes=1),
    }
    assert pnl_sums_total(by_day, since=days[0])["WL"] == PnlSum(pnl=D("4"), fees=D("1.00"), closes=3)
