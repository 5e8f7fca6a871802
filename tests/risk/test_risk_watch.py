"""The risk watch (`run_risk_watch`) against the simulator: the daily stop driven by the account's
streams, with no beat running. Each test runs the watch as the process does, on its own loop in
a thread, with the real feeds and the shared worker gateway."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.models import TradingState
from risk import daily
from risk.daily import daily_control_step
from risk.models import DailyPnL, RiskSettings
from risk.rules import DayOutcome
from risk.watch import RiskWatch
from tests.support.engine import EngineThread, make_runner
from tests.support.sim import market_order, sim_positions
from tests.support.waiting import wait_until
from trading import worker_gateway as worker_gateway_module
from trading.engine_runner import EngineEndpoints
from trading.models import Decision
from trading.rules import Side
from trading.worker_gateway import worker_gateway

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Three longs of about 10,000 USDT each on a 10,000 USDT account: -3 % on each is a -9 % day.
BOOK = (("BTCUSDT", "0.103", "97000.00"), ("ETHUSDT", "3.03", "3300.00"), ("SOLUSDT", "55.5", "180.000"))


@pytest.fixture
def watch_settings(sim, settings, redis_db, monkeypatch):
    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY, settings.SIM_API_SECRET = sim.api_key, sim.api_secret
    monkeypatch.setattr(worker_gateway_module, "_gateway", None)
    monkeypatch.setattr(daily, "FLATTEN_PAUSE_S", 0)
    return settings


def start_watch(sim, **options) -> EngineThread:
    endpoints = EngineEndpoints(
        "sim", sim.liquidation_ws_url, sim.public_ws_url, sim.private_ws_url, sim.api_key, sim.api_secret
    )
    watch = RiskWatch(
        endpoints=endpoints, feed_options={"ping_interval_s": 5, "healthy_after_s": 1}, **options
    )
    return EngineThread(watch).start()


def open_book(gateway) -> None:
    for symbol, qty, price in BOOK:
        gateway.set_leverage(symbol=symbol, leverage=10)
        market_order(gateway, symbol, Side.BUY, qty, price, f"t-{symbol}")


def move_all(sim, factor: str) -> None:
    for symbol, _qty, price in BOOK:
        sim.set_price(symbol, str((Decimal(price) * Decimal(factor)).quantize(Decimal(price))))


def down_3_pct(sim) -> None:
    move_all(sim, "0.97")


def wait_watching(sim, thread: EngineThread, symbols: int) -> None:
    """Until the watch holds a mark for every position and the venue has its subscriptions
    (ready means reconciled, not subscribed)."""
    marks = thread.runner.marks
    wait_until(lambda: len(marks.positions) == symbols and marks.equity_estimate() is not None, what="marks")
    topics = {"wallet", "position", *(f"tickers.{symbol}" for symbol, _qty, _price in BOOK[:symbols])}
    wait_until(
        lambda: topics <= {topic for topic, count in sim.state()["subscriptions"].items() if count},
        what="the subscriptions",
    )


def test_a_minus_9_pct_day_is_flat_within_a_second_and_flattened_once(sim, watch_settings):
    gateway = worker_gateway()
    open_book(gateway)
    thread = start_watch(sim)
    try:
        wait_watching(sim, thread, 3)
        day = DailyPnL.objects.get()  # the watch's start made the day's baseline
        assert day.outcome == "open" and day.baseline_equity > Decimal("9980")

        started = time.monotonic()
        down_3_pct(sim)
        # The beat's pass at the same moment, from another thread: two triggers, one flatten.
        beat = threading.Thread(
            target=daily_control_step, kwargs={"gateway": gateway, "now": datetime.now(UTC)}
        )
        beat.start()
        wait_until(lambda: not sim_positions(sim), timeout_s=5, step_s=0.005, what="flat")
        elapsed = time.monotonic() - started
        beat.join(timeout=10)
    finally:
        thread.stop()

    assert elapsed < 1.0, f"flat {elapsed:.3f} s after the move"
    day = DailyPnL.objects.get()
    assert day.outcome == "stop_hit" and day.pnl_pct <= Decimal("-5")
    stops = Decision.objects.filter(action="daily_stop")
    assert stops.count() == 1 and stops.get().outcome == "taken" and stops.get().details["flat"] is True
    assert TradingState.load().disabled_until is not None


def test_the_watch_acts_on_the_stream_alone_when_no_one_else_checks(sim, watch_settings):
    gateway = worker_gateway()
    open_book(gateway)
    thread = start_watch(sim)
    try:
        wait_watching(sim, thread, 3)
        started = time.monotonic()
        down_3_pct(sim)
        wait_until(lambda: not sim_positions(sim), timeout_s=5, step_s=0.005, what="flat")
        elapsed = time.monotonic() - started
        counts = thread.runner.counts
    finally:
        thread.stop()
    assert elapsed < 1.0
    assert counts["daily_acted"] == 1 and counts["daily_check_mark"] >= 1
    assert Decision.objects.filter(action="daily_stop").count() == 1


def test_a_move_inside_the_limits_asks_the_exchange_nothing(sim, watch_settings):
    gateway = worker_gateway()
    open_book(gateway)
    thread = start_watch(sim)
    try:
        wait_watching(sim, thread, 3)
        move_all(sim, "0.99")  # -1 % each: a -3 % day
        marks = thread.runner.marks
        wait_until(lambda: marks.marks.get("SOLUSDT") == Decimal("178.200"), what="the SOL mark")
        estimate = marks.equity_estimate()
        counts = dict(thread.runner.counts)
    finally:
        thread.stop()
    exchange = gateway.wallet().total_equity
    assert abs(estimate - exchange) < Decimal("0.01"), (estimate, exchange)  # Bybit's own sum
    assert not any(key.startswith("daily_check_") and key != "daily_check_new_day" for key in counts)
    assert len(sim_positions(sim)) == 3 and DailyPnL.objects.get().outcome == "open"


def test_the_daily_disable_survives_a_restart_of_the_watch_and_lifts_at_midnight(sim, watch_settings):
    gateway = worker_gateway()
    open_book(gateway)
    thread = start_watch(sim)
    try:
        wait_watching(sim, thread, 3)
        down_3_pct(sim)
        wait_until(lambda: not sim_positions(sim), timeout_s=5, what="flat")
    finally:
        thread.stop()
    until = TradingState.load().disabled_until
    assert until is not None and until == datetime.combine(
        datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC
    )

    # A restart of the watch and of the engine: both take the state from the database.
    again = start_watch(sim)
    again.stop()
    engine = EngineThread(make_runner(sim)).start()
    try:
        assert engine.engine.flags.disabled_until_ms == int(until.timestamp() * 1000)
    finally:
        engine.stop()
    assert TradingState.load().disabled_until == until
    assert Decision.objects.filter(action="daily_stop").count() == 1

    lifted = daily_control_step(
        gateway=gateway, now=until + timedelta(seconds=1)
    )  # the beat, after 00:00 UTC
    assert lifted.reenabled and TradingState.load().disabled_until is None


def test_a_deposit_of_a_fifth_fires_no_target_and_the_watch_settles_on_the_new_transfers(sim, watch_settings):
    gateway = worker_gateway()
    open_book(gateway)
    thread = start_watch(sim)
    try:
        wait_watching(sim, thread, 3)
        sim.transfer("2000")  # +20 % of the equity: an estimate past the +10 % target
        runner = thread.runner
        wait_until(
            lambda: runner.day is not None and runner.day.net_transfers == Decimal("2000"), what="transfers"
        )
        checks = sum(
            n
            for key, n in runner.counts.items()
            if key.startswith("daily_check_") and key != "daily_check_new_day"
        )
        estimated = runner.estimated_outcome()
        acted = runner.counts["daily_acted"]
    finally:
        thread.stop()
    assert acted == 0 and estimated is DayOutcome.OPEN and 1 <= checks <= 3
    assert len(sim_positions(sim)) == 3 and DailyPnL.objects.get().outcome == "open"
    assert TradingState.load().disabled_until is None


def test_the_im_rate_climbing_past_the_warn_level_on_a_price_move_runs_the_im_watch_at_once(
    sim, watch_settings
):
    RiskSettings.objects.update_or_create(pk=1, defaults={"daily_stop_pct": Decimal("50")})
    gateway = worker_gateway()
    gateway.set_leverage(symbol="BTCUSDT", leverage=10)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.700", "97000", "t-big")  # IM about 68 % of the balance
    thread = start_watch(sim)
    try:
        wait_watching(sim, thread, 1)
        runner = thread.runner
        assert runner.marks.im_pct_estimate() < 80 and not runner.counts["im_check_warn"]
        started = time.monotonic()
        sim.set_price("BTCUSDT", "94090.00")  # -3 %: the margin balance falls by about 2,040
        wait_until(lambda: runner.counts["im_check_warn"], what="the IM watch's step")
        elapsed = time.monotonic() - started
        estimate = runner.marks.im_pct_estimate()
    finally:
        thread.stop()
    bybit = gateway.wallet().im_pct
    assert elapsed < 1.0 and abs(estimate - bybit) < 1, (elapsed, estimate, bybit)
    assert Decision.objects.filter(action="im_warn").count() == 1
