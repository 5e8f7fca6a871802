"""panic_trigger / panic_reset against the running simulator through the real gateway."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pytest

from core import keys
from core.models import TradingState
from core.redis_client import events_channel
from panic.errors import PanicResetRefused
from panic.services import panic_reset, panic_trigger
from tests.support.sim import open_orders_on_exchange
from tests.support.telegram import DESK, OWNER
from tests.support.threads import run_in_threads
from trading.bybit import OrderType
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class EventListener:
    """Subscribes to the events channel; on the first trading_state message, snapshots the exchange."""

    def __init__(self, redis_db, sim):
        self.sim = sim
        self.pubsub = redis_db.pubsub()
        self.pubsub.subscribe(events_channel())
        assert self.pubsub.get_message(timeout=2)["type"] == "subscribe"
        self.messages: list[dict] = []
        self.positions_when_locked: list | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.05)
            if message and message["type"] == "message":
                payload = json.loads(message["data"])
                if payload["type"] == "trading_state" and self.positions_when_locked is None:
                    self.positions_when_locked = [p["symbol"] for p in self.sim.state()["positions"]]
                self.messages.append(payload)

    def stop(self):
        time.sleep(0.2)
        self._stop.set()
        self._thread.join(timeout=2)
        self.pubsub.close()


def test_panic_locks_first_then_cancels_everything_closes_both_sides_and_journals(
    sim, panic_settings, open_book, redis_db
):
    listener = EventListener(redis_db, sim)
    # The first exchange call of the flatten answers 300 ms late: the lock must be out before it.
    sim.fault("/v5/order/cancel-all", mode="latency", latencyMs=300)

    result = panic_trigger(by="test", reason="drill")
    listener.stop()

    assert result.flat and result.verified and result.newly_locked
    assert result.closed == ["BTCUSDT", "ETHUSDT"] and result.cancelled_orders == 5  # SOL limit + 2 TP + 2 SL
    assert result.remaining_positions == [] and result.remaining_orders == 0
    # Flat on the exchange itself, with reduce-only closes on the opposite sides.
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    closes = [o for o in sim.state()["orders"] if o["reduceOnly"] and o["orderType"] == "Market"]
    assert {(o["symbol"], o["side"], Decimal(o["qty"])) for o in closes} == {
        ("BTCUSDT", "Sell", Decimal("0.010")),
        ("ETHUSDT", "Buy", Decimal("0.50")),
    }
    assert all(o["orderLinkId"].startswith("panic-close-") for o in closes)
    # Locked in the record, with the reason.
    state = TradingState.load()
    assert state.panic_locked and state.panic_reason == "drill" and state.panic_since == result.locked_since
    assert not state.may_trade(state.panic_since)
    # The engine heard of the lock while both positions were still open.
    assert listener.positions_when_locked == ["BTCUSDT", "ETHUSDT"]
    locks = [m for m in listener.messages if m["type"] == "trading_state"]
    assert locks and locks[0]["panic_locked"] is True and locks[0]["panic_reason"] == "drill"
    assert json.loads(redis_db.get(keys.TRADING_STATE))["panic_locked"] is True
    # Journaled: the flatten and the panic.
    panic = Decision.objects.get(action="panic")
    assert (panic.strategy, panic.outcome, panic.reason_code) == ("panic", "taken", "flat")
    assert panic.details["by"] == "test" and panic.details["closed"] == ["BTCUSDT", "ETHUSDT"]
    assert panic.details["run_key"] == result.run_key
    flatten = Decision.objects.get(action="flatten")
    assert (flatten.strategy, flatten.details["run_key"]) == ("panic", result.run_key)
    assert redis_db.get(keys.PANIC_RUN) is None  # the run lock is released


def test_exchange_faults_are_retried_and_the_panic_still_ends_flat(sim, panic_settings, open_book):
    sim.fault("/v5/order/cancel-all", retCode=10016, count=1)  # retried by the gateway
    sim.fault("/v5/position/list", httpStatus=502, count=2)  # retried by the gateway
    sim.fault("/v5/order/create-batch", retCode=10001, count=1)  # the first closes refused: the next round

    result = panic_trigger(by="test")

    assert result.flat and result.rounds == 2
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    assert Decision.objects.get(action="panic").outcome == "taken"


def test_a_panic_that_cannot_get_flat_says_so_stays_locked_and_blocks_the_reset(
    sim, panic_settings, open_book
):
    # Every close is refused for all three rounds (both go out in one batch a round).
    sim.fault("/v5/order/create-batch", retCode=10001, count=3)

    result = panic_trigger(by="test")

    assert not result.flat and result.verified and result.rounds == 3
    assert result.remaining_positions == ["BTCUSDT", "ETHUSDT"] and result.remaining_orders == 0
    assert result.errors and all("10001" in e for e in result.errors)
    assert TradingState.load().panic_locked
    assert Decision.objects.get(action="panic").reason_code == "not_flat"

    with pytest.raises(PanicResetRefused) as refused:
        panic_reset(by="test")
    assert refused.value.reason_code == "not_flat"
    assert refused.value.remaining_positions == ["BTCUSDT", "ETHUSDT"]
    assert "BTCUSDT, ETHUSDT" in refused.value.message
    assert TradingState.load().panic_locked
    assert Decision.objects.get(action="reset").outcome == "skipped"

    # Triggered again once the exchange takes orders: flat, and then the reset goes through.
    assert panic_trigger(by="test").flat
    reset = panic_reset(by="test")
    assert reset.was_locked and reset.may_trade
    state = TradingState.load()
    assert not state.panic_locked and state.panic_since is None and state.panic_reason == ""
    assert Decision.objects.filter(action="reset", outcome="taken", reason_code="unlocked").count() == 1


def test_an_unreadable_account_is_never_flat_and_the_reset_is_refused(sim, panic_settings, open_book):
    # 10003 (key rejected) is not retried by the gateway, so each round fails fast.
    sim.fault("/v5/position/list", retCode=10003, count=1000)
    result = panic_trigger(by="test")
    assert not result.flat and not result.verified
    with pytest.raises(PanicResetRefused) as refused:
        panic_reset(by="test")
    assert refused.value.reason_code == "exchange_unreadable"
    assert TradingState.load().panic_locked


def test_the_reset_is_refused_while_a_resting_order_remains(sim, panic_settings, gateway):
    panic_trigger(by="test")  # flat account: locks
    gateway.place_order(
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("1.0"),
        order_link_id="late-limit",
        order_type=OrderType.LIMIT,
        price=Decimal("150.000"),
    )
    with pytest.raises(PanicResetRefused) as refused:
        panic_reset(by="test")
    assert refused.value.remaining_orders == 1 and refused.value.remaining_positions == []
    assert TradingState.load().panic_locked


def test_a_second_trigger_flattens_again_and_keeps_the_first_lock_time(
    sim, panic_settings, open_book, gateway
):
    first = panic_trigger(by="first", reason="first reason")
    gateway.place_order(  # something opened by hand while locked
        symbol="BTCUSDT",
        side=Side.SELL,
        qty=Decimal("0.005"),
        order_link_id="by-hand",
        reference_price=Decimal("97000"),
    )
    second = panic_trigger(by="second", reason="second reason")

    assert first.flat and second.flat and first.newly_locked and not second.newly_locked
    assert second.locked_since == first.locked_since and second.closed == ["BTCUSDT"]
    state = TradingState.load()
    assert state.panic_since == first.locked_since and state.panic_reason == "first reason"
    assert sim.state()["positions"] == []
    # A third on a flat account sends nothing.
    sent = len(sim.state()["orders"])
    third = panic_trigger(by="third")
    assert third.flat and third.closed == [] and len(sim.state()["orders"]) == sent


def test_a_reset_when_not_locked_is_a_no_op(sim, panic_settings):
    sim.fault("/v5/position/list", httpStatus=500, count=1000)  # not even asked
    result = panic_reset(by="test")
    assert not result.was_locked and result.may_trade
    assert not Decision.objects.exists()


def test_the_reset_is_refused_while_a_panic_flatten_runs(sim, panic_settings, redis_db):
    TradingState.objects.update_or_create(pk=1, defaults={"panic_locked": True})
    redis_db.set(keys.PANIC_RUN, "another-run", px=5000)
    with pytest.raises(PanicResetRefused) as refused:
        panic_reset(by="test")
    assert refused.value.reason_code == "panic_running"
    assert redis_db.get(keys.PANIC_RUN) == "another-run"


def test_two_triggers_at_once_run_one_flatten_and_both_get_its_result(sim, panic_settings, open_book):
    sim.fault("/v5/order/cancel-all", mode="latency", latencyMs=500)  # keep the first run busy
    # The second starts 50 ms after the first, well inside the first's flatten. (Exactly together,
    # the in-memory SQLite test database, whose shared cache cannot make a writer wait, fails one
    # of them with "table is locked"; a file database waits, as settings.py configures it.)
    results = run_in_threads(2, lambda index: panic_trigger(by=f"thread-{index}"), stagger_s=0.05)

    assert all(not isinstance(r, BaseException) for r in results), results
    assert all(r.flat for r in results)
    assert sorted(r.joined for r in results) == [False, True]
    assert results[0].run_key == results[1].run_key
    assert Decision.objects.filter(action="flatten").count() == 1
    assert sorted(Decision.objects.filter(action="panic").values_list("outcome", flat=True)) == [
        "skipped",
        "taken",
    ]
    closes = [o for o in sim.state()["orders"] if o["reduceOnly"] and o["orderType"] == "Market"]
    assert sorted(o["symbol"] for o in closes) == ["BTCUSDT", "ETHUSDT"]  # one close each, not two
    assert sum(1 for r in results if r.newly_locked) == 1


def test_a_trigger_that_tires_of_waiting_for_a_running_flatten_says_so_without_flattening(
    sim, panic_settings, open_book, redis_db
):
    panic_settings.PANIC_JOIN_WAIT_S = 0.2
    redis_db.set(keys.PANIC_RUN, "another-run", px=5000)

    result = panic_trigger(by="test")

    assert result.running and result.status == "running" and result.run_key == "another-run"
    assert not result.flat and TradingState.load().panic_locked  # the lock is on all the same
    assert len(sim.state()["positions"]) == 2
    skipped = Decision.objects.get(action="panic")
    assert (skipped.outcome, skipped.reason_code) == ("skipped", "already_running")
    assert not Decision.objects.filter(action="flatten").exists()


def test_the_panic_and_the_reset_are_announced_on_telegram(sim, alerts_on, bot_api, open_book):
    assert panic_trigger(by="api:api-token").flat
    assert panic_reset(by="api:api-token").was_locked

    for chat in (OWNER, DESK):
        texts = bot_api.sent_to(chat)
        assert len(texts) == 2
        assert texts[0].startswith("PANIC by api:api-token: account FLAT") and "BTCUSDT, ETHUSDT" in texts[0]
        assert texts[1].startswith("Panic lock lifted by api:api-token")


def test_an_unreachable_telegram_does_not_break_the_panic(sim, alerts_on, bot_api, open_book):
    bot_api.stop()
    assert panic_trigger(by="test").flat
    assert sim.state()["positions"] == []
