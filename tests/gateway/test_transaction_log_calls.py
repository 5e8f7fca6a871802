"""The gateway's transaction-log read against the running simulator: typed rows, every page through
the cursor or a stop at max_pages that says where it stopped, filters and a time window."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from trading.bybit import TransactionLog
from trading.errors import BadRequest
from trading.rules import Side

pytestmark = pytest.mark.integration


def test_a_deposit_a_withdrawal_and_a_fill_come_back_typed_newest_first(gateway, sim):
    sim.transfer("300")
    sim.transfer("-120.5")
    gateway.place_order(
        symbol="BTCUSDT", side=Side.BUY, qty=D("0.010"), order_link_id="t-log", reference_price=D("97000")
    )

    log = gateway.transaction_log()

    assert isinstance(log, TransactionLog) and log.next_cursor == ""
    trade, out, deposit = log.entries
    assert (deposit.type, deposit.currency, deposit.cash_flow, deposit.cash_balance) == (
        "TRANSFER_IN",
        "USDT",
        D("300"),
        D("10300"),
    )
    assert (out.type, out.change, out.cash_balance) == ("TRANSFER_OUT", D("-120.5"), D("10179.5"))
    assert (trade.type, trade.symbol, trade.side, trade.size, trade.order_link_id) == (
        "TRADE",
        "BTCUSDT",
        "Buy",
        D("0.010"),
        "t-log",
    )
    assert trade.change == -trade.fee and trade.fee > 0
    assert deposit.transaction_time <= out.transaction_time <= trade.transaction_time


def test_it_follows_the_cursor_or_stops_at_max_pages_and_says_where(gateway, sim):
    for amount in range(1, 8):
        sim.transfer(str(amount))

    every = gateway.transaction_log(limit=2)
    some = gateway.transaction_log(limit=2, max_pages=2)

    assert [entry.cash_flow for entry in every.entries] == [D(n) for n in range(7, 0, -1)]
    assert every.next_cursor == "" and len(some.entries) == 4 and some.next_cursor != ""


def test_it_filters_by_type_and_currency_and_reads_a_window(gateway, sim):
    sim.transfer("50")
    sim.collateral("USDC", "1", "0.95")
    sim.transfer("70", coin="USDC")
    sim.transfer("-20")

    assert [e.cash_flow for e in gateway.transaction_log(log_type="TRANSFER_OUT").entries] == [D("-20")]
    assert [e.currency for e in gateway.transaction_log(currency="USDC").entries] == ["USDC"]
    later = timezone.now() + timedelta(seconds=5)
    assert gateway.transaction_log(start=later).entries == ()
    assert len(gateway.transaction_log(start=later - timedelta(hours=1)).entries) == 3


def test_a_window_over_7_days_is_bybits_10001(gateway, sim):
    now = timezone.now()
    with pytest.raises(BadRequest) as refused:
        gateway.transaction_log(start=now - timedelta(days=8), end=now)
    assert refused.value.code == 10001
