"""The engine's recent liquidations: a bounded deque on the hot path, published with the journal flush
(a Redis list and a push to the dashboard group)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from core import keys
from tests.support.book import make_coin
from tests.support.engine import EngineThread, make_runner, move_price
from tests.support.waiting import wait_until
from trading.engine import RECENT_LIQUIDATIONS, LiquidationEngine
from trading.engine_runner import EngineRunner
from trading.events import LiquidationEvent
from trading.rules.decision import Skip, SkipReason


def event(number: int, symbol: str = "BTCUSDT") -> LiquidationEvent:
    return LiquidationEvent(
        symbol=symbol,
        liquidated_side="long",
        price=Decimal("95000"),
        qty=Decimal("0.5"),
        notional=Decimal("47500"),
        event_time=number,
        source="sim",
        event_id=f"sim:{symbol}:{number}",
    )


def test_each_flush_takes_only_the_liquidations_it_has_not_published_even_past_the_bound():
    engine = LiquidationEngine(gateway=None, loop=None, order_threads=1)
    runner = EngineRunner(gateway=None, endpoints=None)
    runner.engine = engine
    skip = Skip(SkipReason.OFFSET_NOT_MET, "BTCUSDT", "x", price=Decimal("95100"), vwap=Decimal("95200"))

    assert runner._take_new_liquidations() == []
    for number in range(3):
        engine.recent_liquidations.append((1000 + number, event(number), skip))
    first = runner._take_new_liquidations()
    assert [row["event_ms"] for row in first] == [0, 1, 2]
    assert first[0] == {
        "at_ms": 1000,
        "event_ms": 0,
        "event_age_ms": 1000,
        "symbol": "BTCUSDT",
        "side": "long",
        "price": "95000",
        "qty": "0.5",
        "notional": "47500",
        "source": "sim",
        "bybit_price": "95100",
        "vwap": "95200",
        "result": "offset_not_met",
    }
    assert runner._take_new_liquidations() == []

    # More than the deque holds between two flushes: the newest RECENT_LIQUIDATIONS, once each.
    for number in range(3, 3 + RECENT_LIQUIDATIONS + 10):
        engine.recent_liquidations.append((1000 + number, event(number), skip))
    second = runner._take_new_liquidations()
    assert len(engine.recent_liquidations) == RECENT_LIQUIDATIONS
    assert [row["event_ms"] for row in second] == list(range(13, 13 + RECENT_LIQUIDATIONS))
    engine.order_executor.shutdown()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_engine_publishes_liquidations_of_configured_coins_to_redis_and_the_group(sim, redis_db):
    make_coin("BTCUSDT")
    thread = EngineThread(make_runner(sim)).start()
    layer = get_channel_layer()
    try:
        move_price(sim, thread.engine, "BTCUSDT", "95000.00")  # about 2 % under the 97 000 history

        async def listen():
            channel = await layer.new_channel()
            await layer.group_add(keys.DASHBOARD_GROUP, channel)
            sim.liquidation("ETHUSDT", "SELL", "3300", "10")  # not a configured coin: not listed
            sim.liquidation("BTCUSDT", "SELL", "95000", "0.001")  # below the size threshold
            sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")  # enters
            rows = []
            while len(rows) < 2:
                message = await asyncio.wait_for(layer.receive(channel), timeout=5)
                if message["type"] == "liquidations":
                    rows += message["liquidations"]
            await layer.group_discard(keys.DASHBOARD_GROUP, channel)
            return rows

        pushed = async_to_sync(listen)()
        assert [(row["symbol"], Decimal(row["qty"]), row["result"]) for row in pushed] == [
            ("BTCUSDT", Decimal("0.001"), "below_size_threshold"),
            ("BTCUSDT", Decimal("0.5"), "entry"),
        ]
        stored = wait_until(lambda: redis_db.lrange(keys.ENGINE_LIQUIDATIONS, 0, -1), what="the Redis list")
        assert [json.loads(row) for row in stored] == pushed
        assert all(e.symbol == "BTCUSDT" for _, e, _ in thread.engine.recent_liquidations)
    finally:
        thread.stop()
