"""The engine's side of the alerts, end to end (simulator, engine thread, real Redis and
database, the real PTB client on the Bot API stand-in): a WL entry is alerted from the
journal flush, off the hot path, and the feeds' clocks are published for the beat's
feed-silent check."""

from __future__ import annotations

import json
import time

import pytest

from core import keys
from tests.support.engine import entry_orders, move_price
from tests.support.telegram import OWNER
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_entry_is_alerted_after_the_order_went_out(sim, telegram_settings, bot_api, engine_thread):
    move_price(sim, engine_thread.engine, "BTCUSDT", "95000.00")
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")

    [order] = wait_until(lambda: entry_orders(sim), what="the entry order")
    [text] = wait_until(lambda: bot_api.sent_to(OWNER), what="the entry alert")
    assert text.startswith("WL entry BTCUSDT long: 0.010 @ ")
    assert "TP " in text and "SL " in text


def test_the_feeds_clocks_are_published_for_the_silence_check(sim, redis_db, engine_thread):
    injected_ms = time.time_ns() // 1_000_000
    sim.liquidation("BTCUSDT", "SELL", "97000", "0.001")

    def heard_it():
        raw = redis_db.get(keys.ENGINE_FEEDS)
        record = json.loads(raw) if raw else None
        if record and record["feeds"]["liquidation"]["last_frame_ms"] >= injected_ms:
            return record
        return None

    record = wait_until(heard_it, timeout_s=8, what="the liquidation feed's clock")
    assert record["feeds"]["liquidation"]["connected"] is True
    assert abs(record["at_ms"] - time.time_ns() // 1_000_000) < 8000
    assert set(record["feeds"]) == {"liquidation", "market"}
