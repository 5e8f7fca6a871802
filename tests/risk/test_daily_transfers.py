"""Deposits, withdrawals and transfers are not PnL: daily_control_step against the simulator, real pybit
through the gateway, transfers made with /sim/transfer and read back from /v5/account/transaction-log."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from risk import daily, daily_transfers
from risk.daily import daily_control_step
from risk.models import DailyPnL
from tests.support.sim import market_order
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _fast_flatten(monkeypatch, redis_db):
    monkeypatch.setattr(daily, "FLATTEN_PAUSE_S", 0)


def test_a_deposit_of_20_percent_fires_no_target_even_right_after_a_read(sim, gateway, alerts):
    now = timezone.now()
    first = daily_control_step(gateway=gateway, now=now)
    assert first.baseline_created and first.transfers_read and first.net_transfers == 0

    sim.transfer("2000")  # +20 % of 10 000, a moment after the log was read
    second = daily_control_step(gateway=gateway, now=now + timedelta(seconds=1))

    # Not due by the clock, but +20 % would fire the target: the pass read the log again first.
    assert second.transfers_read and second.equity == Decimal("12000")
    assert (second.net_transfers, second.pnl_pct, second.outcome, second.acted) == (
        Decimal("2000"),
        Decimal("0"),
        "open",
        False,
    )
    day = DailyPnL.objects.get()
    assert (day.net_transfers, day.pnl_usdt, day.last_equity) == (
        Decimal("2000"),
        Decimal("0"),
        Decimal("12000"),
    )
    [transfer] = day.transfers
    assert (transfer["type"], transfer["currency"], transfer["amount"], transfer["usdt"]) == (
        "TRANSFER_IN",
        "USDT",
        "2000",
        "2000.0000",
    )
    journal = Decision.objects.get(action="daily_transfer")
    assert (journal.outcome, journal.reason_code, journal.details["usdt"]) == (
        "taken",
        "TRANSFER_IN",
        "2000.0000",
    )
    assert alerts.sent == []

    # Counted once, however often the log is read again.
    third = daily_control_step(gateway=gateway, now=now + timedelta(seconds=2))
    assert third.net_transfers == Decimal("2000") and len(DailyPnL.objects.get().transfers) == 1


def test_a_withdrawal_of_20_percent_fires_no_stop_and_a_real_loss_still_does(sim, gateway, alerts):
    now = timezone.now()
    daily_control_step(gateway=gateway, now=now)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")  # fills at 97009.70

    sim.transfer("-2000")  # -20 %
    withdrawn = daily_control_step(gateway=gateway, now=now + timedelta(seconds=1))

    assert withdrawn.net_transfers == Decimal("-2000") and withdrawn.outcome == "open" and not withdrawn.acted
    # Only the opening fee (0.5 x 97009.70 x 0.055 % = 26.67766750) and 0.5 x -9.70 unrealised.
    assert withdrawn.pnl_pct == Decimal("-0.3152")
    assert sim.state()["positions"] != []

    sim.set_price("BTCUSDT", "95500.00")  # 0.5 x -1509.70 = -754.85 unrealised and the fee: -781.53
    stopped = daily_control_step(gateway=gateway, now=now + timedelta(seconds=2))

    assert stopped.acted and stopped.outcome == "stop_hit" and stopped.flatten.flat
    assert stopped.pnl_pct == Decimal(
        "-7.8152"
    )  # -7.815276675 % cut and stopped.net_transfers == Decimal("-2000")
    assert sim.state()["positions"] == []
    day = DailyPnL.objects.get()
    assert (day.outcome, day.baseline_equity, day.net_transfers) == (
        "stop_hit",
        Decimal("10000"),
        Decimal("-2000"),
    )
    journal = Decision.objects.get(action="daily_stop")
    assert journal.details["net_transfers"] == "-2000.0000"
    [alert] = alerts.sent
    assert "(-781.5277 USDT, net transfers -2000.0000 USDT not counted, limit -5 %)" in alert.text


def test_transfers_before_the_baseline_are_in_it_and_count_no_more(sim, gateway):
    sim.transfer("500")  # before the day's first pass: part of the baseline
    first = daily_control_step(gateway=gateway, now=timezone.now())

    assert first.net_transfers == 0 and DailyPnL.objects.get().baseline_equity == Decimal("10500")


def test_an_unreadable_transaction_log_never_stops_the_daily_control(sim, gateway, monkeypatch, alerts):
    monkeypatch.setattr(daily_transfers, "TRANSFERS_READ_INTERVAL_S", 0)  # every pass reads
    now = timezone.now()
    daily_control_step(gateway=gateway, now=now)
    sim.transfer("-1000")
    assert daily_control_step(gateway=gateway, now=now).net_transfers == Decimal("-1000")
    market_order(gateway, "ETHUSDT", Side.BUY, "20.00", "3300", "t-eth")

    sim.fault("/v5/account/transaction-log", mode="error", httpStatus=502, count=10)
    blind = [daily_control_step(gateway=gateway, now=now + timedelta(seconds=n)) for n in (1, 2)]
    sim.set_price("ETHUSDT", "3000.00")  # 20 x -300.33: about -6 % of the baseline
    stopped = daily_control_step(gateway=gateway, now=now + timedelta(seconds=3))

    # The last known transfers stand in; the stop fires on time, the failure is journaled once.
    assert all(not r.transfers_read and r.net_transfers == Decimal("-1000") for r in blind)
    assert stopped.acted and stopped.outcome == "stop_hit" and stopped.net_transfers == Decimal("-1000")
    [failure] = Decision.objects.filter(action="daily_transfers")
    assert (failure.outcome, failure.reason_code, failure.details["net_transfers"]) == (
        "failed",
        "transaction_log_unreadable",
        "-1000.0000",
    )
