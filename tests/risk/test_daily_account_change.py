"""A day's record belongs to one account (mode and Bybit UID): a change of account mid-day starts
the new account's own baseline, journaled, and trading stays allowed; the old row stays as history.
The second account is a second simulator with another key (another UID) and 350 USDT."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from core.models import TradingState
from risk import daily
from risk.daily import daily_control_step
from risk.models import DailyPnL
from risk.selectors import daily_history_rows, daily_row_today
from simulator.payloads import user_id_for_key
from simulator.testing import running_simulator
from tests.support.sim import make_sim_gateway, market_order
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2025, 3, 10)


@pytest.fixture(autouse=True)
def _fast_flatten(monkeypatch, redis_db):
    monkeypatch.setattr(daily, "FLATTEN_PAUSE_S", 0)


@pytest.fixture
def other_account():
    """Another account: its own key (so its own UID) and 350 USDT, far from the first one's 10 000."""
    with running_simulator(equity="350", api_key="second-account-key", api_secret="second-secret") as other:
        yield make_sim_gateway(other, max_attempts=1)


def baselines():
    return list(Decision.objects.filter(action="daily_baseline").order_by("id"))


def test_a_change_of_account_mid_day_starts_its_own_baseline_and_trading_stays_allowed(
    sim, gateway, other_account
):
    first = daily_control_step(gateway=gateway, now=NOW)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.100", "97000", "t-long")
    daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1))
    old_row = DailyPnL.objects.get(account=first.account)

    # Against the first account's 10 000 baseline, 350 USDT would be -96.5 %: the stop at once.
    switched = daily_control_step(gateway=other_account, now=NOW + timedelta(minutes=2))

    assert first.account == f"sim:{user_id_for_key(sim.api_key)}"
    assert switched.account == other_account.account_id() != first.account
    assert switched.account_changed and switched.baseline_created and switched.baseline_source == "exchange"
    assert (switched.outcome, switched.acted, switched.pnl_pct) == ("open", False, Decimal("0"))
    assert TradingState.load().may_trade(NOW + timedelta(minutes=3))
    assert not Decision.objects.filter(action__in=["daily_stop", "daily_target"]).exists()
    new_row = DailyPnL.objects.get(account=switched.account)
    assert (new_row.date, new_row.baseline_equity, new_row.outcome) == (TODAY, Decimal("350"), "open")
    # The old account's row stays as it was: history, not overwritten.
    assert DailyPnL.objects.get(account=first.account) == old_row
    assert DailyPnL.objects.get(account=first.account).last_equity == old_row.last_equity
    journal = baselines()[-1]
    assert (journal.reason_code, journal.details["account"]) == ("account_changed", switched.account)
    assert journal.details["previous_account"] == first.account
    assert journal.details["previous_baseline_equity"] == "10000.0000"
    assert journal.details["baseline_equity"] == "350.0000"

    # The readers show the account measured now; history keeps one row a day.
    assert daily_row_today(today=TODAY, mode="sim").account == switched.account
    assert [row.account for row in daily_history_rows(mode="sim", days=30)] == [switched.account]
    assert daily_row_today(today=TODAY, mode="demo") is None

    # Back to the first account the same day: its own row goes on, no third baseline.
    back = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=3))
    assert not back.baseline_created and back.account == first.account and back.outcome == "open"
    assert DailyPnL.objects.filter(date=TODAY).count() == 2 and len(baselines()) == 2
    assert daily_row_today(today=TODAY, mode="sim").account == first.account


def test_a_row_older_than_accounts_is_not_the_new_accounts_baseline(other_account):
    DailyPnL.objects.create(  # as migration 0003 leaves it: account "unknown"
        date=TODAY,
        baseline_equity=Decimal("10000"),
        last_equity=Decimal("10000"),
        high_equity=Decimal("10000"),
        low_equity=Decimal("10000"),
    )

    result = daily_control_step(gateway=other_account, now=NOW)

    assert result.account_changed and result.outcome == "open" and not result.acted
    assert baselines()[-1].details["previous_account"] == "unknown"
    assert TradingState.load().may_trade(NOW)
    assert DailyPnL.objects.get(account="unknown").outcome == "open"


def test_a_key_that_cannot_be_read_yet_gets_a_stand_in_row_that_its_account_adopts(sim):
    fresh = make_sim_gateway(sim, prepare=False, max_attempts=1)  # the account is not known yet
    sim.fault("/v5/user/query-api", mode="error", httpStatus=502, count=1)

    unread = daily_control_step(gateway=fresh, now=NOW)

    assert (unread.account, unread.baseline_source, unread.equity) == ("sim:unidentified", "fallback", None)
    assert DailyPnL.objects.get().baseline_equity == Decimal("350")

    read = daily_control_step(gateway=fresh, now=NOW + timedelta(seconds=5))

    assert (
        read.account == fresh.account_id() and read.baseline_source == "rebased" and not read.account_changed
    )
    day = DailyPnL.objects.get()  # the same row, now the account's, rebased on its first read
    assert (day.account, day.baseline_equity, day.baseline_source) == (
        read.account,
        Decimal("10000"),
        "rebased",
    )
    assert [d.reason_code for d in baselines()] == ["fallback", "rebased"]
