"""daily_control_step against the simulator: baseline, limits, flatten, disable, the next day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from core import keys
from core.models import TradingState
from risk import daily
from risk.daily import DAILY_REASON_PREFIX, daily_control_step
from risk.models import DailyPnL, RiskSettings
from tests.support.sim import market_order
from tests.support.telegram import OWNER
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2025, 3, 10)
NEXT_MIDNIGHT = datetime(2025, 3, 11, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_flatten(monkeypatch, redis_db):
    monkeypatch.setattr(daily, "FLATTEN_PAUSE_S", 0)


def equity(gateway) -> Decimal:
    return gateway.wallet().total_equity.quantize(Decimal("0.0001"))


def test_the_first_pass_of_a_day_sets_the_baseline_once_and_every_pass_tracks_the_day(sim, gateway):
    first = daily_control_step(gateway=gateway, now=NOW)
    assert first.baseline_created and first.baseline_source == "exchange"
    market_order(gateway, "BTCUSDT", Side.BUY, "0.100", "97000", "t-long")  # fills at 97009.70

    sim.set_price("BTCUSDT", "98000.00")
    up = equity(gateway)
    second = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1))
    sim.set_price("BTCUSDT", "96000.00")
    down = equity(gateway)
    third = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=2))

    assert not second.baseline_created and not third.baseline_created
    day = DailyPnL.objects.get()
    assert day.date == TODAY and day.baseline_equity == Decimal("10000")
    # 0.1 x (96000 - 97009.70) = -100.97 unrealised, and the 5.3355 opening fee
    assert down == Decimal("9893.6945") and up == Decimal("10093.6945")
    assert (day.last_equity, day.high_equity, day.low_equity) == (down, up, down)
    assert day.pnl_usdt == Decimal("-106.3055") and day.pnl_pct == Decimal("-1.0630")  # -1.063055 cut
    assert day.outcome == "open" and third.outcome == "open"
    baseline = Decision.objects.get(action="daily_baseline")
    assert (baseline.strategy, baseline.reason_code, baseline.details["baseline_equity"]) == (
        "risk",
        "exchange",
        "10000.0000",
    )


def test_an_unreadable_exchange_falls_back_to_the_settings_equity_until_the_first_read(sim, gateway):
    sim.fault("/v5/account/wallet-balance", mode="error", httpStatus=502, count=1)

    first = daily_control_step(gateway=gateway, now=NOW)

    assert first.baseline_source == "fallback" and first.equity is None
    assert DailyPnL.objects.get().baseline_equity == RiskSettings.load().equity_usdt == Decimal("350")
    fallback = Decision.objects.get(action="daily_baseline")
    assert fallback.reason_code == "fallback" and "unreadable" in fallback.details["note"]

    # 10 000 against a 350 stand-in would look like +2757 %: the first read replaces the stand-in.
    second = daily_control_step(gateway=gateway, now=NOW + timedelta(seconds=5))

    assert second.baseline_source == "rebased" and second.outcome == "open" and not second.acted
    day = DailyPnL.objects.get()
    assert (day.baseline_equity, day.pnl_pct, day.outcome) == (Decimal("10000"), Decimal("0"), "open")
    assert list(
        Decision.objects.filter(action="daily_baseline").order_by("id").values_list("reason_code", flat=True)
    ) == ["fallback", "rebased"]
    third = daily_control_step(gateway=gateway, now=NOW + timedelta(seconds=10))
    assert third.baseline_source == "" and Decision.objects.filter(action="daily_baseline").count() == 2


def closes_accepted(sim) -> int:
    return len([o for o in sim.state()["orders"] if o["reduceOnly"] and not o.get("rejectCode")])


def flattens():
    return Decision.objects.filter(strategy="risk", action="flatten")


def test_hitting_the_target_flattens_every_position_and_disables_until_midnight_once(
    sim, gateway, redis_db, alerts
):
    daily_control_step(gateway=gateway, now=NOW)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    market_order(gateway, "SOLUSDT", Side.BUY, "2.0", "180", "t-pm")
    redis_db.sadd(keys.PM_SYMBOLS, "SOLUSDT")  # the portfolio's: flattened too, the day is over for all
    sim.set_price("BTCUSDT", "99500.00")  # 0.5 x 2490.30 = +1245.15 before fees: about +12 %

    hit = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1))

    assert hit.acted and hit.outcome == "target_hit" and hit.flatten.flat
    assert sim.state()["positions"] == []
    closes = [o for o in sim.state()["orders"] if o["reduceOnly"]]
    assert {(o["symbol"], o["side"]) for o in closes} == {("BTCUSDT", "Sell"), ("SOLUSDT", "Sell")}
    assert all(o["orderLinkId"].startswith("risk-close-") for o in closes)
    state = TradingState.load()
    assert state.disabled_until == NEXT_MIDNIGHT and state.disabled_reason.startswith(DAILY_REASON_PREFIX)
    assert "target" in state.disabled_reason and not state.may_trade(NOW + timedelta(minutes=2))
    day = DailyPnL.objects.get()
    assert day.outcome == "target_hit" and day.pnl_pct >= Decimal("10")
    journal = Decision.objects.get(action="daily_target")
    assert (journal.strategy, journal.outcome, journal.reason_code) == ("risk", "taken", "target_hit")
    assert journal.details["disabled_until"] == "2025-03-11T00:00:00+00:00"
    assert flattens().count() == 1 and flattens().get().details["run_key"] == "daily-2025-03-10"
    [alert] = alerts.sent
    assert alert.chat_id == OWNER and alert.text.startswith("Daily target hit: ")
    assert "Trading off until 2025-03-11 00:00 UTC" in alert.text

    # The next pass (or another worker) sees the day decided: nothing is done twice.
    sent_before = len(sim.state()["orders"])
    again = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1, seconds=5))
    assert not again.acted and again.outcome == "target_hit" and again.flatten is None
    assert len(sim.state()["orders"]) == sent_before and flattens().count() == 1
    assert Decision.objects.filter(action="daily_target").count() == 1 and len(alerts.sent) == 1


def test_hitting_the_stop_flattens_and_disables_until_midnight_once(sim, gateway):
    daily_control_step(gateway=gateway, now=NOW)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    market_order(gateway, "ETHUSDT", Side.SELL, "2.00", "3300", "t-short")
    sim.set_price("BTCUSDT", "96500.00")
    assert daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1)).outcome == "open"
    sim.set_price("BTCUSDT", "95000.00")  # 0.5 x -2009.70 = -1004.85 before fees: about -10 %

    hit = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=2))
    again = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=2, seconds=5))

    assert hit.acted and hit.outcome == "stop_hit" and hit.flatten.flat
    assert not again.acted and again.outcome == "stop_hit"
    assert sim.state()["positions"] == []
    assert {(o["symbol"], o["side"]) for o in sim.state()["orders"] if o["reduceOnly"]} == {
        ("BTCUSDT", "Sell"),
        ("ETHUSDT", "Buy"),
    }
    state = TradingState.load()
    assert state.disabled_until == NEXT_MIDNIGHT and "stop" in state.disabled_reason
    day = DailyPnL.objects.get()
    assert day.outcome == "stop_hit" and day.pnl_pct <= Decimal("-5")
    assert Decision.objects.get(action="daily_stop").reason_code == "stop_hit"
    assert flattens().count() == 1


def test_the_next_utc_day_re_enables_trading_and_starts_a_new_baseline(sim, gateway):
    daily_control_step(gateway=gateway, now=NOW)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    sim.set_price("BTCUSDT", "95000.00")
    daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1))
    assert TradingState.load().disabled_until == NEXT_MIDNIGHT
    evening = daily_control_step(gateway=gateway, now=NEXT_MIDNIGHT - timedelta(seconds=1))
    assert not evening.reenabled and TradingState.load().disabled_until == NEXT_MIDNIGHT

    morning = daily_control_step(gateway=gateway, now=NEXT_MIDNIGHT + timedelta(seconds=3))

    assert morning.reenabled and morning.baseline_created and morning.date == date(2025, 3, 11)
    state = TradingState.load()
    assert state.disabled_until is None and state.disabled_reason == ""
    assert state.may_trade(NEXT_MIDNIGHT + timedelta(seconds=4))
    days = {d.date: d for d in DailyPnL.objects.all()}
    assert days[TODAY].outcome == "stop_hit" and days[date(2025, 3, 11)].outcome == "open"
    assert days[date(2025, 3, 11)].baseline_equity == equity(gateway)
    assert Decision.objects.get(action="trading_enable").reason_code == "new_day"


def test_the_new_day_lifts_only_the_daily_disable_never_a_panic_a_halt_or_another_disable(sim, gateway):
    state = TradingState.load()
    state.panic_locked = True
    state.halted = True
    state.disabled_until = NOW - timedelta(hours=1)
    state.disabled_reason = f"{DAILY_REASON_PREFIX}daily stop hit (-5.1 % on 2025-03-09)"
    state.save()

    assert daily_control_step(gateway=gateway, now=NOW).reenabled
    state = TradingState.load()
    assert state.disabled_until is None and state.panic_locked and state.halted

    state.disabled_until = NOW - timedelta(minutes=1)
    state.disabled_reason = "maintenance window"
    state.save()
    assert not daily_control_step(gateway=gateway, now=NOW + timedelta(seconds=5)).reenabled
    assert TradingState.load().disabled_reason == "maintenance window"


def test_a_flatten_that_does_not_end_flat_is_retried_on_a_later_pass(sim, gateway, redis_db):
    daily_control_step(gateway=gateway, now=NOW)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    sim.set_price("BTCUSDT", "95000.00")
    # Every close of 5 rounds refused, on whichever order endpoint it goes out.
    sim.fault("*", mode="error", retCode=110007, count=5, symbol="BTCUSDT")

    hit = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1))

    assert hit.acted and not hit.flatten.flat
    assert [p["symbol"] for p in sim.state()["positions"]] == ["BTCUSDT"]
    assert Decision.objects.get(action="daily_stop").outcome == "failed"
    assert TradingState.load().disabled_until == NEXT_MIDNIGHT  # trading is off even so

    # Within the retry interval nothing happens; once it passed, the next pass flattens again.
    assert daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1, seconds=5)).flatten is None
    retry = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1, seconds=35))

    assert retry.flatten.flat and sim.state()["positions"] == []
    assert flattens().order_by("id").last().details["run_key"] == "daily-2025-03-10-r1"
    assert daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=2, seconds=10)).flatten is None


def test_an_unfinished_flatten_is_retried_from_the_database_after_redis_lost_everything_and_once(
    sim, gateway, redis_db
):
    daily_control_step(gateway=gateway, now=NOW)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    sim.set_price("BTCUSDT", "95000.00")
    sim.fault("*", mode="error", retCode=110007, count=5, symbol="BTCUSDT")  # every close refused

    hit = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1))

    assert hit.acted and not hit.flatten.flat
    day = DailyPnL.objects.get()
    assert (day.flatten_attempts, day.flatten_attempted_at, day.flat_verified_at) == (
        1,
        NOW + timedelta(minutes=1),
        None,
    )
    redis_db.flushdb()  # a Redis restart without persistence, or a worker on another Redis
    accepted_before = closes_accepted(sim)

    retry = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1, seconds=30))
    later = [
        daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=minutes)) for minutes in (2, 3, 10)
    ]

    assert retry.flatten.flat and sim.state()["positions"] == []
    assert all(run.flatten is None for run in later)  # flat is on the record: no flatten again
    day.refresh_from_db()
    assert (day.flatten_attempts, day.flat_verified_at) == (2, NOW + timedelta(minutes=1, seconds=30))
    assert closes_accepted(sim) - accepted_before == 1  # one close, of the one position
    assert [f.details["run_key"] for f in flattens().order_by("id")] == [
        "daily-2025-03-10",
        "daily-2025-03-10-r1",
    ]


def test_a_day_flat_after_its_limit_records_it_and_is_never_flattened_again(sim, gateway, redis_db):
    daily_control_step(gateway=gateway, now=NOW)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    sim.set_price("BTCUSDT", "95000.00")

    daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1))
    redis_db.flushdb()
    market_order(gateway, "ETHUSDT", Side.BUY, "0.10", "3300", "t-by-hand")  # opened by hand afterwards
    after = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=5))

    day = DailyPnL.objects.get()
    assert (day.flatten_attempts, day.flat_verified_at) == (1, NOW + timedelta(minutes=1))
    assert after.flatten is None and [p["symbol"] for p in sim.state()["positions"]] == ["ETHUSDT"]
