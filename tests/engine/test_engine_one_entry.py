"""One entry per cascade, whatever the timing: a periodic REST reconcile whose snapshot is older
than the engine's own pending entry must not make the engine enter the symbol again, even
with a cooldown of 0; and an entry whose journal row a crash lost before the flush is
rebuilt from the exchange at the next start, so its cooldown still holds."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.engine import entry_orders, move_price, start_listening_engine
from tests.support.sim import make_sim_gateway
from tests.support.waiting import wait_until
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def quiet_engine(sim, btc_coin, redis_db):
    """The engine with no periodic reconcile of its own: the test runs the one it needs."""
    assert btc_coin.entry_cooldown_seconds == 0
    thread = start_listening_engine(sim, redis_db, reconcile_interval_s=3600)
    yield thread
    if thread.thread.is_alive():
        thread.stop()


def _pending_faults(sim, endpoint: str) -> list[dict]:
    return [fault for fault in sim.state()["faults"] if fault["endpoint"] == endpoint]


def test_a_reconcile_older_than_a_slow_entry_does_not_let_a_second_liquidation_enter(sim, quiet_engine):
    thread = quiet_engine
    engine = thread.engine
    move_price(sim, engine, "BTCUSDT", "95000.00")  # about 2 % under the VWAP: every long liquidation enters
    # The reconcile's position read is answered late: the venue reads the account at once
    # (flat) and answers 1.5 s later, so the snapshot is older than the entry that follows.
    sim.fault("/v5/position/list", mode="accept_then_timeout", latencyMs=1500)
    # And the entry's own answer is slow (under the gateway's 3 s timeout).
    sim.fault("/v5/order/create", mode="accept_then_timeout", latencyMs=800)
    reconcile = asyncio.run_coroutine_threadsafe(thread.runner._reconcile(), thread.loop)
    wait_until(lambda: not _pending_faults(sim, "/v5/position/list"), what="the reconcile's position read")

    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    [order] = wait_until(lambda: entry_orders(sim), what="the entry order")
    assert order["orderStatus"] == "Filled"
    wait_until(lambda: "BTCUSDT" in engine.account.positions, what="the fill on the private stream")
    reconcile.result(timeout=10)
    # The setup holds: the reconcile replaced the account with its flat (stale) snapshot.
    assert "BTCUSDT" not in engine.account.positions

    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")  # the cascade goes on; cooldown 0
    wait_until(
        lambda: len(entry_orders(sim)) > 1 or Decision.objects.filter(outcome="skipped").exists(),
        what="the second liquidation decided",
    )
    assert len(entry_orders(sim)) == 1
    skipped = Decision.objects.get(outcome="skipped")
    assert skipped.symbol == "BTCUSDT"


def test_a_reconcile_after_the_answer_settles_the_entry_and_frees_a_closed_symbol(sim, quiet_engine):
    thread = quiet_engine
    engine = thread.engine
    move_price(sim, engine, "BTCUSDT", "95000.00")
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    wait_until(lambda: entry_orders(sim), what="the entry order")
    wait_until(lambda: Decision.objects.filter(outcome="taken").exists(), what="the entry answered")
    assert "BTCUSDT" in engine.pending_entries
    # The position closes on the exchange (its stop, say); a reconcile that began after the
    # answer shows it flat and settles the entry: the symbol may be entered again.
    _close_by_hand(sim, "BTCUSDT")
    wait_until(lambda: "BTCUSDT" not in engine.account.positions, what="the close on the private stream")
    time.sleep(1.1)  # PENDING_SETTLE_MARGIN_MS after the answer
    asyncio.run_coroutine_threadsafe(thread.runner._reconcile(), thread.loop).result(timeout=10)
    assert engine.pending_entries == {}
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    wait_until(lambda: len(entry_orders(sim)) == 2, what="a new entry on the freed symbol")


def _close_by_hand(sim, symbol: str) -> None:
    hand = make_sim_gateway(sim)
    [position] = hand.positions(symbol=symbol)
    hand.close_position(position=position, order_link_id="by-hand")


async def _crash_loses_the_batch(engine) -> None:
    engine.take_journal()  # what a SIGKILL before the flush does to the rows waiting for it


def test_an_entry_whose_row_a_crash_lost_is_rebuilt_at_the_next_start_and_its_cooldown_holds(
    sim, btc_coin, redis_db
):
    btc_coin.entry_cooldown_seconds = 300
    btc_coin.save()
    first = start_listening_engine(sim, redis_db, journal_interval_s=3600)  # no flush before the "crash"
    move_price(sim, first.engine, "BTCUSDT", "95000.00")
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    [order] = wait_until(lambda: entry_orders(sim), what="the entry order")
    wait_until(lambda: first.engine.entries_answered == 1, what="the entry's answer")
    asyncio.run_coroutine_threadsafe(_crash_loses_the_batch(first.engine), first.loop).result(timeout=5)
    first.stop()
    link_id = order["orderLinkId"]
    assert not Decision.objects.filter(order_link_id=link_id).exists()  # the row is lost
    _close_by_hand(sim, "BTCUSDT")  # flat again: only the journal can hold the cooldown now

    second = start_listening_engine(sim, redis_db)
    try:
        [row] = Decision.objects.filter(order_link_id=link_id)
        assert (row.strategy, row.symbol, row.action, row.outcome, row.reason_code) == (
            "wl",
            "BTCUSDT",
            "open_long",
            "taken",
            "recovered",
        )
        assert row.details["recovered"] is True and row.details["order_id"] == order["orderId"]
        assert abs(row.created_at.timestamp() * 1000 - second.engine.last_entry_ms["BTCUSDT"]) < 1
        assert "BTCUSDT" not in second.engine.account.positions
        move_price(sim, second.engine, "BTCUSDT", "95000.00")
        sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")  # the same cascade, after the restart
        wait_until(
            lambda: Decision.objects.filter(outcome="skipped", reason_code="cooldown").exists(),
            what="the cooldown skip",
        )
        assert len(entry_orders(sim)) == 1
    finally:
        second.stop()
    # A third start finds the row and writes none again.
    third = start_listening_engine(sim, redis_db)
    third.stop()
    assert Decision.objects.filter(order_link_id=link_id).count() == 1
