"""Simulator + engine, end to end: liquidations injected through /sim/liquidation, orders seen in /sim/state.

The engine runs in its own thread and event loop, as in `run_engine`, with the real
gateway (pybit), the real feeds (websockets), a real database and a real Redis.
"""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import pytest

from tests.support.engine import (
    EngineThread,
    entry_orders,
    make_runner,
    move_price,
    wait_for_liquidation_stream,
)
from tests.support.waiting import wait_until
from trading.engine_runner import EngineEndpoints
from trading.models import Decision
from trading.services import trading_halt, trading_resume

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _try(action):
    try:
        return action()
    except AssertionError:
        return None


def test_a_long_liquidation_below_vwap_opens_exactly_one_long(sim, engine_thread):
    engine = engine_thread.engine
    move_price(sim, engine, "BTCUSDT", "95000.00")  # about 2 % under the 97 000 history
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")  # a long of 47 500 USDT liquidated

    [order] = wait_until(lambda: entry_orders(sim), what="the entry order")
    # 100 USDT margin x 10 = 1000 USDT notional / 95 000 = 0.010526... -> 0.010 (qtyStep 0.001)
    assert (order["side"], order["orderType"], Decimal(order["qty"]), order["reduceOnly"]) == (
        "Buy",
        "Market",
        Decimal("0.010"),
        False,
    )
    assert order["orderStatus"] == "Filled"

    # The position shows; a second liquidation on the symbol is skipped, never a second order.
    wait_until(lambda: "BTCUSDT" in engine.account.positions, what="the position on the private stream")
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    taken = wait_until(
        lambda: Decision.objects.filter(outcome="skipped", reason_code="already_in_position").first(),
        what="the skip in the journal",
    )
    assert taken.symbol == "BTCUSDT"
    assert len(entry_orders(sim)) == 1
    entered = Decision.objects.get(outcome="taken")
    assert entered.order_link_id == order["orderLinkId"] and entered.action == "open_long"
    assert entered.details["qty"] == "0.010" and Decimal(entered.details["vwap"]) > Decimal("95000")


def test_a_short_liquidation_above_vwap_opens_a_short_with_tp_and_sl(sim, engine_thread):
    engine = engine_thread.engine
    move_price(sim, engine, "BTCUSDT", "99000.00")
    sim.liquidation("BTCUSDT", "BUY", "99000", "0.2")  # BUY = a short liquidated
    [order] = wait_until(lambda: entry_orders(sim), what="the entry order")
    assert (order["side"], Decimal(order["qty"])) == ("Sell", Decimal("0.010"))
    position = wait_until(
        lambda: [p for p in sim.state()["positions"] if p["symbol"] == "BTCUSDT"], what="the position"
    )[0]
    # TP 1 % below and SL 2 % above the decision price, rounded toward the market.
    assert Decimal(position["takeProfit"]) == Decimal("98010.0")
    assert Decimal(position["stopLoss"]) == Decimal("100980.0")


@pytest.mark.parametrize(
    ("price", "side", "liquidation_price", "qty", "reason"),
    [
        ("96800.00", "SELL", "96800", "0.5", "offset_not_met"),  # only 0.2 % under VWAP
        ("95000.00", "SELL", "95000", "0.001", "below_size_threshold"),  # 95 USDT < 1000
        ("95000.00", "BUY", "95000", "0.5", "offset_not_met"),  # a short liquidation below VWAP
    ],
)
def test_skips_place_nothing_and_are_journaled(
    sim, engine_thread, price, side, liquidation_price, qty, reason
):
    move_price(sim, engine_thread.engine, "BTCUSDT", price)
    sim.liquidation("BTCUSDT", side, liquidation_price, qty)
    wait_until(lambda: Decision.objects.filter(reason_code=reason).exists(), what=f"a {reason} skip")
    assert entry_orders(sim) == []


def test_a_halt_reaches_the_engine_within_100_ms_and_blocks_entries(
    sim, engine_thread, django_capture_on_commit_callbacks
):
    engine = engine_thread.engine
    move_price(sim, engine, "BTCUSDT", "95000.00")
    with django_capture_on_commit_callbacks(execute=True):
        trading_halt(by="test", reason="e2e")
    started = time.monotonic()
    wait_until(lambda: engine.snapshot.halted, timeout_s=1, step_s=0.002, what="the halt")
    assert time.monotonic() - started < 0.1
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    wait_until(lambda: Decision.objects.filter(reason_code="halted").exists(), what="a halted skip")
    assert entry_orders(sim) == []
    with django_capture_on_commit_callbacks(execute=True):
        trading_resume(by="test")
    wait_until(lambda: not engine.snapshot.halted, timeout_s=1, step_s=0.002, what="the resume")


def test_a_coin_edit_takes_effect_within_2_seconds(
    sim, engine_thread, btc_coin, django_capture_on_commit_callbacks
):
    engine = engine_thread.engine
    btc_coin.enabled = False
    with django_capture_on_commit_callbacks(execute=True):
        btc_coin.save()
    started = time.monotonic()
    wait_until(lambda: not engine.coins["BTCUSDT"].enabled, timeout_s=2, what="the disabled coin")
    assert time.monotonic() - started < 2
    # A disabled coin's market streams are dropped too; the skip comes before any price is read.
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    wait_until(lambda: Decision.objects.filter(reason_code="disabled").exists(), what="a disabled skip")


def test_a_restart_with_an_open_position_reconciles_and_does_not_reenter(sim, engine_thread):
    engine = engine_thread.engine
    move_price(sim, engine, "BTCUSDT", "95000.00")
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    wait_until(lambda: entry_orders(sim), what="the first entry")
    engine_thread.stop()

    restarted = EngineThread(make_runner(sim)).start()
    try:
        assert "BTCUSDT" in restarted.engine.account.positions, "reconciled from the exchange before trading"
        wait_for_liquidation_stream(sim, restarted)
        move_price(sim, restarted.engine, "BTCUSDT", "94000.00")

        def skipped_after_a_liquidation():
            sim.liquidation("BTCUSDT", "SELL", "94000", "0.5")
            return wait_until(
                lambda: Decision.objects.filter(reason_code="already_in_position").exists(),
                timeout_s=0.5,
                what="the skip",
            )

        wait_until(
            lambda: _try(skipped_after_a_liquidation), timeout_s=10, step_s=0, what="the skip after restart"
        )
        assert len(entry_orders(sim)) == 1
    finally:
        restarted.stop()


def test_a_refused_order_is_journaled_as_failed_and_frees_the_symbol(sim, engine_thread):
    engine = engine_thread.engine
    move_price(sim, engine, "BTCUSDT", "95000.00")
    sim.fault("/v5/order/create", mode="error", retCode=110007, count=1)
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    failed = wait_until(lambda: Decision.objects.filter(outcome="failed").first(), what="the failed entry")
    assert failed.reason_code == "insufficient_balance" and failed.details["error_code"] == 110007
    wait_until(lambda: "BTCUSDT" not in engine.snapshot.open_order_symbols, what="the symbol freed")
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    wait_until(
        lambda: entry_orders(sim) and entry_orders(sim)[-1]["orderStatus"] == "Filled",
        what="the second, accepted entry",
    )


def test_decisions_are_pushed_to_the_dashboard_group(sim, engine_thread):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    async def listen_for_one():
        channel = await layer.new_channel()
        await layer.group_add("dashboard", channel)
        sim.liquidation("BTCUSDT", "SELL", "95000", "0.001")  # below the size threshold: a journaled skip
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    message = async_to_sync(listen_for_one)()
    assert message["type"] == "journal.decisions"
    [decision] = message["decisions"]
    assert (decision["symbol"], decision["outcome"], decision["reason_code"]) == (
        "BTCUSDT",
        "skipped",
        "below_size_threshold",
    )


MALFORMED_FRAMES = [
    '{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":"0.5","p":"95000"',  # truncated
    '{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":[1],"p":"95000","ap":"95000","z":"0.5","T":1}}',
    '{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SIDEWAYS","q":"0.5","p":"95000","ap":"95000","T":1}}',
    '{"e":"forceOrder","E":1,"o":{"S":"SELL","q":"0.5","p":"95000","ap":"95000","T":1}}',
    '{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":"1e400","p":"95000","ap":"95000","T":1}}',
    '{"e":"forceOrder","E":1,"o":{"s":"NOT A SYMBOL","S":"SELL","q":"0.5","p":"95000","ap":"95000","T":1}}',
    "null",
    "[]",
    "",
    "\x00\xff garbage",
]
# A liquidation of now (its time filled in when sent): an older one would be a stale_event.
GOOD_FRAME = (
    '{{"e":"forceOrder","E":{now},"o":{{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",'
    '"q":"0.5","p":"95000","ap":"95000","X":"FILLED","l":"0.5","z":"0.5","T":{now}}}}}'
)


def test_malformed_frames_change_nothing_and_the_next_good_one_trades(sim, btc_coin, redis_db):
    import websockets

    sent = threading.Event()
    release = threading.Event()

    async def handler(connection):
        for frame in MALFORMED_FRAMES:
            await connection.send(frame)
        await asyncio.to_thread(release.wait, 10)
        await connection.send(GOOD_FRAME.format(now=time.time_ns() // 1_000_000))
        sent.set()
        await connection.wait_closed()

    server_box = {}

    def serve():
        async def main():
            async with websockets.serve(handler, "127.0.0.1", 0) as server:
                server_box["port"] = server.sockets[0].getsockname()[1]
                await asyncio.to_thread(sent.wait, 30)
                await asyncio.sleep(1)

        asyncio.run(main())

    threading.Thread(target=serve, daemon=True).start()
    wait_until(lambda: "port" in server_box, what="the junk server")
    runner = make_runner(sim)
    runner.endpoints = EngineEndpoints(
        "sim",
        f"ws://127.0.0.1:{server_box['port']}",
        sim.public_ws_url,
        sim.private_ws_url,
        sim.api_key,
        sim.api_secret,
    )
    thread = EngineThread(runner).start()
    try:
        move_price(sim, thread.engine, "BTCUSDT", "95000.00")
        wait_until(
            lambda: runner.liquidation_feed.stats.malformed >= len(MALFORMED_FRAMES) - 1,
            what="the malformed frames counted",
        )
        assert thread.engine.events_seen == 0 and entry_orders(sim) == []
        assert runner.liquidation_feed.stats.connects == 1, "bad input never drops the connection"
        release.set()
        [order] = wait_until(lambda: entry_orders(sim), what="the order from the good frame")
        assert order["side"] == "Buy"
    finally:
        release.set()
        thread.stop()


def test_a_dropped_liquidation_feed_reconnects_and_resumes(sim, engine_thread):
    engine = engine_thread.engine
    feed = engine_thread.runner.liquidation_feed
    move_price(sim, engine, "BTCUSDT", "95000.00")
    sim.fault("/market/ws/!forceOrder@arr", mode="drop_ws", count=0)
    wait_until(
        lambda: feed.stats.reconnects >= 1 and feed.stats.connected,
        timeout_s=10,
        what="the feed to reconnect",
    )

    def entered_after_a_liquidation():
        # The client can count itself connected a moment before the venue has registered
        # the new connection; a liquidation in that gap is lost, as it would be live.
        sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
        return wait_until(lambda: entry_orders(sim), timeout_s=0.5, what="an entry")

    wait_until(
        lambda: _try(entered_after_a_liquidation), timeout_s=10, step_s=0, what="an entry after the reconnect"
    )
    assert len(entry_orders(sim)) == 1


def test_a_longer_vwap_window_is_reseeded_from_rest(
    sim, engine_thread, btc_coin, django_capture_on_commit_callbacks
):
    engine = engine_thread.engine
    btc_coin.vwap_window_minutes = 240
    with django_capture_on_commit_callbacks(execute=True):
        btc_coin.save()

    def window_candles():
        window = engine.market.get("BTCUSDT")._windows.get(240)
        return window is not None and len(list(window.candles())) >= 239

    wait_until(window_candles, timeout_s=10, what="240 minutes of candles")


def test_a_risk_settings_edit_takes_effect_within_2_seconds(
    sim, engine_thread, django_capture_on_commit_callbacks
):
    from risk.models import RiskSettings

    engine = engine_thread.engine
    risk = RiskSettings.load()
    risk.max_open_positions = 2
    with django_capture_on_commit_callbacks(execute=True):
        risk.save()
    started = time.monotonic()
    wait_until(lambda: engine.snapshot.max_open_positions == 2, timeout_s=2, what="the new limit")
    assert time.monotonic() - started < 2
