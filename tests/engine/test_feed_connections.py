"""The feed adapters against a real local websockets server: delivery, reconnects, silence, rollover, junk."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
from decimal import Decimal

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.waiting import wait_until_async
from trading.feeds import (
    CLOSED,
    CONNECT_FAILED,
    ROLLOVER,
    SILENT,
    Backoff,
    BinanceLiquidationFeed,
    BybitLiquidationFeed,
    BybitMarketFeed,
)
from trading.rules.vwap import MINUTE_MS, MarketState

FAST = dict(
    backoff=Backoff(base_s=0.01, cap_s=0.05, rng=random.Random(1)), open_timeout_s=2.0, close_timeout_s=0.2
)


async def _run(feed):
    """Start ``feed.run()``; returns the task (the test stops the feed and awaits it)."""
    return asyncio.get_running_loop().create_task(feed.run())


async def _stop(feed, task):
    feed.stop()
    await asyncio.wait_for(task, timeout=3)


async def _hold_open(ws):
    """Keep a server connection open without sending until the client goes away."""
    try:
        await ws.wait_closed()
    except ConnectionClosed:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- Binance --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_binance_events_are_delivered_in_order(local_server, five_symbol_lines):
    lines = five_symbol_lines[:20]

    async def script(ws, number):
        for line in lines:
            await ws.send(line)
        await _hold_open(ws)

    events = []
    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(server.url, on_event=events.append, **FAST)
        task = await _run(feed)
        await wait_until_async(lambda: len(events) == 20)
        await _stop(feed, task)
    assert [e.event_time for e in events] == [json.loads(line)["o"]["T"] for line in lines]
    assert events[0].symbol == "SOLUSDT" and events[0].liquidated_side == "long"
    assert (feed.stats.connects, feed.stats.reconnects, feed.stats.events, feed.stats.malformed) == (
        1,
        0,
        20,
        0,
    )


@pytest.mark.asyncio
async def test_a_dropped_connection_reconnects_and_resumes(local_server, five_symbol_lines, caplog):
    async def script(ws, number):
        if number == 1:
            for line in five_symbol_lines[:3]:
                await ws.send(line)
            # Drop the TCP connection without a closing handshake, as a network failure would.
            ws.transport.abort()
            return
        for line in five_symbol_lines[3:6]:
            await ws.send(line)
        await _hold_open(ws)

    events = []
    caplog.set_level(logging.INFO, logger="trading.feeds")
    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(server.url, on_event=events.append, **FAST)
        task = await _run(feed)
        await wait_until_async(lambda: len(events) == 6)
        await _stop(feed, task)
    assert [e.event_id for e in events] == [e.event_id for e in map(_parse, five_symbol_lines[:6])]
    assert server.connections == 2
    assert (feed.stats.connects, feed.stats.reconnects) == (2, 1)
    assert feed.stats.reconnect_reasons == {CLOSED: 1}
    reconnect_logs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feed_reconnect")]
    assert len(reconnect_logs) == 1
    assert reconnect_logs[0].startswith("feed_reconnect feed=binance reason=closed attempt=1 delay_s=")


def _parse(line):
    from trading.feeds import parse_binance_force_order

    return parse_binance_force_order(line)


@pytest.mark.asyncio
async def test_a_silent_stream_is_detected_and_reconnected(local_server, five_symbol_lines):
    async def script(ws, number):
        if number == 1:
            await ws.send(five_symbol_lines[0])
            await _hold_open(ws)  # then nothing: a stream that stopped without closing
            return
        await ws.send(five_symbol_lines[1])
        await _hold_open(ws)

    events = []
    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(server.url, on_event=events.append, silence_timeout_s=0.3, **FAST)
        task = await _run(feed)
        started = asyncio.get_running_loop().time()
        await wait_until_async(lambda: len(events) == 2)
        waited = asyncio.get_running_loop().time() - started
        await _stop(feed, task)
    assert feed.stats.reconnect_reasons[SILENT] >= 1
    assert feed.stats.recent_reconnects[0][0] == SILENT
    assert 0.25 < waited < 3


@pytest.mark.asyncio
async def test_it_rolls_over_at_the_configured_age_without_delay(local_server, five_symbol_lines):
    async def script(ws, number):
        for line in five_symbol_lines[number * 10 : (number + 1) * 10]:
            await ws.send(line)
            await asyncio.sleep(0.05)
        await _hold_open(ws)

    events = []
    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(
            server.url, on_event=events.append, max_connection_age_s=0.4, silence_timeout_s=5, **FAST
        )
        task = await _run(feed)
        await wait_until_async(lambda: server.connections >= 3)
        await _stop(feed, task)
    assert feed.stats.reconnect_reasons == {ROLLOVER: feed.stats.reconnects}
    assert all(delay == 0.0 and attempt == 0 for _, attempt, delay in feed.stats.recent_reconnects)
    # Each connection lived about 0.4 s and delivered what was sent in that time.
    times = {event.event_time for event in events}
    for number in (1, 2):
        assert times & {
            _parse(line).event_time for line in five_symbol_lines[number * 10 : (number + 1) * 10]
        }


@pytest.mark.asyncio
async def test_a_dead_peer_is_detected_by_protocol_pings(local_server, five_symbol_lines):
    async def script(ws, number):
        await ws.send(five_symbol_lines[number])
        if number == 1:
            # Freeze: the server stops reading, so our pings go unanswered (a dead peer
            # whose TCP connection is still up). The silence timeout is far away.
            ws.transport.pause_reading()
        await _hold_open(ws)

    events = []
    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(
            server.url,
            on_event=events.append,
            silence_timeout_s=30,
            ping_interval_s=0.1,
            ping_timeout_s=0.2,
            **FAST,
        )
        task = await _run(feed)
        await wait_until_async(lambda: len(events) == 2)
        await _stop(feed, task)
    assert feed.stats.reconnect_reasons == {CLOSED: 1}
    assert feed.stats.recent_reconnects[0][0] == CLOSED


@pytest.mark.asyncio
async def test_malformed_frames_are_counted_logged_and_skipped(local_server, five_symbol_lines, caplog):
    junk = [
        five_symbol_lines[0][:40],  # truncated
        b"\xff\xfe\x00garbage",  # binary frame, not UTF-8
        '{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":"NaN","p":"1","T":1}}',
        "x" * 2000,  # long junk: logged truncated
        '{"e":"forceOrder","E":1,"o":{"s":"BTCUSDC","S":"SELL","q":"1","p":"1","T":1}}',  # not ours
    ]

    async def script(ws, number):
        await ws.send(five_symbol_lines[0])
        for frame in junk:
            await ws.send(frame)
        await ws.send(five_symbol_lines[1])
        await _hold_open(ws)

    events, rejected = [], []
    caplog.set_level(logging.WARNING, logger="trading.feeds")
    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(
            server.url,
            on_event=events.append,
            on_malformed=lambda frame, error: rejected.append(error.reason),
            **FAST,
        )
        task = await _run(feed)
        await wait_until_async(lambda: len(events) == 2)
        await _stop(feed, task)
    assert feed.stats.malformed == 4 and feed.stats.unsupported == 1
    assert feed.stats.connects == 1 and feed.stats.reconnects == 0  # bad input never costs the connection
    assert rejected == ["invalid_json", "not_utf8", "bad_number:o.q", "invalid_json"]
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feed_malformed")]
    assert len(logged) == 4
    assert logged[2].startswith('feed_malformed feed=binance reason=bad_number:o.q raw=\'{"e":"forceOrder"')
    assert logged[3].endswith("...(+1500 chars)") and len(logged[3]) < 600


@pytest.mark.asyncio
async def test_a_failing_callback_does_not_stop_the_feed(local_server, five_symbol_lines):
    async def script(ws, number):
        for line in five_symbol_lines[:3]:
            await ws.send(line)
        await _hold_open(ws)

    seen = []

    def on_event(event):
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("engine bug")

    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(server.url, on_event=on_event, **FAST)
        task = await _run(feed)
        await wait_until_async(lambda: len(seen) == 3)
        await _stop(feed, task)
    assert feed.stats.callback_errors == 1 and feed.stats.reconnects == 0


@pytest.mark.asyncio
async def test_backoff_grows_is_jittered_and_capped_while_the_venue_is_down():
    feed = BinanceLiquidationFeed(
        f"ws://127.0.0.1:{_free_port()}/market/ws/!forceOrder@arr",
        on_event=print,
        backoff=Backoff(base_s=0.01, cap_s=0.08, rng=random.Random(42)),
    )
    task = await _run(feed)
    while feed.stats.reconnects < 7:
        await asyncio.sleep(0.01)
    await _stop(feed, task)
    rows = list(feed.stats.recent_reconnects)[:7]
    assert [reason for reason, _, _ in rows] == [CONNECT_FAILED] * 7
    assert [attempt for _, attempt, _ in rows] == [1, 2, 3, 4, 5, 6, 7]
    ceilings = [0.01, 0.02, 0.04, 0.08, 0.08, 0.08, 0.08]
    for (_, _, delay), ceiling in zip(rows, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    # Jittered: the delays are not just the ceilings, and a seeded rng repeats them exactly.
    assert [delay for _, _, delay in rows] != ceilings
    again = Backoff(base_s=0.01, cap_s=0.08, rng=random.Random(42))
    assert [again.delay(n) for n in range(1, 8)] == [delay for _, _, delay in rows]


def test_backoff_ceiling_grows_to_the_cap():
    backoff = Backoff(base_s=0.5, cap_s=30, rng=random.Random(0))
    assert [backoff.ceiling(n) for n in (1, 2, 3, 4, 5, 6, 7, 8, 100, 10_000)] == [
        0.5,
        1,
        2,
        4,
        8,
        16,
        30,
        30,
        30,
        30,
    ]
    delays = [backoff.delay(3) for _ in range(200)]
    assert min(delays) >= 1 and max(delays) <= 2 and len(set(delays)) > 100


@pytest.mark.asyncio
async def test_the_backoff_starts_over_after_a_healthy_connection(local_server, five_symbol_lines):
    async def script(ws, number):
        if number <= 2:
            return  # closes at once: a failing venue
        if number == 3:
            await ws.send(five_symbol_lines[0])
            await asyncio.sleep(0.3)  # up long enough to count as healthy
            return
        await _hold_open(ws)

    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(server.url, on_event=lambda event: None, healthy_after_s=0.2, **FAST)
        task = await _run(feed)
        await wait_until_async(lambda: server.connections >= 4)
        await _stop(feed, task)
    assert [attempt for _, attempt, _ in feed.stats.recent_reconnects] == [1, 2, 1]


@pytest.mark.asyncio
async def test_stop_ends_the_feed_promptly_even_while_backing_off():
    feed = BinanceLiquidationFeed(
        f"ws://127.0.0.1:{_free_port()}/x", on_event=print, backoff=Backoff(base_s=20, cap_s=30)
    )
    task = await _run(feed)
    while feed.stats.reconnects < 1:
        await asyncio.sleep(0.01)
    await _stop(feed, task)  # fails if it waits out the 10-20 s delay
    assert task.done()


# -- Bybit ----------------------------------------------------------------------


def _liquidation_frame(symbol: str, side: str, t: int) -> str:
    return json.dumps(
        {
            "topic": f"allLiquidation.{symbol}",
            "type": "snapshot",
            "ts": t + 300,
            "data": [{"T": t, "s": symbol, "S": side, "v": "0.5", "p": "95000.1"}],
        }
    )


async def _bybit_server_loop(ws, server, number, on_subscribe):
    """Answer like Bybit: subscribe acks (and a failure for NOPE topics), pongs; call on_subscribe(args)."""
    try:
        async for text in ws:
            server.received[number].append(text)
            message = json.loads(text)
            if message.get("op") == "ping":
                await ws.send(
                    json.dumps(
                        {"success": True, "ret_msg": "pong", "conn_id": "c", "req_id": "", "op": "ping"}
                    )
                )
            elif message.get("op") in ("subscribe", "unsubscribe"):
                bad = [topic for topic in message["args"] if "NOPE" in topic]
                await ws.send(
                    json.dumps(
                        {
                            "success": not bad,
                            "ret_msg": f"error:topic:{bad}" if bad else "",
                            "conn_id": "c",
                            "req_id": message.get("req_id", ""),
                            "op": message["op"],
                        }
                    )
                )
                if message["op"] == "subscribe" and not bad:
                    await on_subscribe(message["args"])
    except ConnectionClosed:
        pass


@pytest.mark.asyncio
async def test_bybit_liquidations_subscribe_ping_and_resubscribe_after_reconnect(local_server):
    async def script(ws, number):
        async def on_subscribe(args):
            for topic in args:
                symbol = topic.split(".")[1]
                await ws.send(_liquidation_frame(symbol, "Buy", 1739502302000 + number))
            if number == 1 and len(server.received[1]) == 1:
                asyncio.get_running_loop().create_task(close_later())

        async def close_later():
            await asyncio.sleep(0.35)  # long enough for a few JSON pings
            await ws.close()

        await _bybit_server_loop(ws, server, number, on_subscribe)

    events = []
    async with local_server(script) as server:
        feed = BybitLiquidationFeed(
            server.url,
            symbols=["BTCUSDT", "ETHUSDT"],
            on_event=events.append,
            app_ping_interval_s=0.1,
            **FAST,
        )
        task = await _run(feed)
        await wait_until_async(lambda: len(events) == 4)
        await _stop(feed, task)
    subscribes = {
        number: [json.loads(t) for t in texts if json.loads(t)["op"] == "subscribe"]
        for number, texts in server.received.items()
    }
    # The same topics on both connections, one per request: the subscription survives the reconnect.
    for number in (1, 2):
        assert [m["args"] for m in subscribes[number]] == [
            ["allLiquidation.BTCUSDT"],
            ["allLiquidation.ETHUSDT"],
        ]
    assert '{"op":"ping"}' in server.received[1]
    assert feed.stats.pongs >= 1
    assert {(e.symbol, e.liquidated_side) for e in events} == {("BTCUSDT", "long"), ("ETHUSDT", "long")}
    assert feed.stats.reconnect_reasons == {CLOSED: 1}


@pytest.mark.asyncio
async def test_bybit_symbols_can_change_at_runtime(local_server):
    async def script(ws, number):
        async def on_subscribe(args):
            for topic in args:
                await ws.send(_liquidation_frame(topic.split(".")[1], "Sell", 1739502302000))

        await _bybit_server_loop(ws, server, number, on_subscribe)

    events = []
    async with local_server(script) as server:
        feed = BybitLiquidationFeed(server.url, symbols=["BTCUSDT"], on_event=events.append, **FAST)
        task = await _run(feed)
        await wait_until_async(lambda: len(events) == 1)
        await feed.update_symbols(["SOLUSDT", "NOPEUSDT"])
        await wait_until_async(lambda: len(events) == 2 and feed.stats.subscribe_failures == 1)
        await _stop(feed, task)
    sent = [json.loads(t) for t in server.received[1]]
    assert [(m["op"], m["args"]) for m in sent if m["op"] != "ping"] == [
        ("subscribe", ["allLiquidation.BTCUSDT"]),
        ("unsubscribe", ["allLiquidation.BTCUSDT"]),
        ("subscribe", ["allLiquidation.NOPEUSDT"]),
        ("subscribe", ["allLiquidation.SOLUSDT"]),
    ]
    assert events[1].symbol == "SOLUSDT" and events[1].liquidated_side == "short"
    assert feed.symbols == frozenset({"SOLUSDT", "NOPEUSDT"})


@pytest.mark.asyncio
async def test_bybit_market_feed_updates_prices_and_vwap(local_server):
    start = 1_760_325_000_000 - 1_760_325_000_000 % MINUTE_MS

    def kline(minute, volume, turnover, confirm):
        return json.dumps(
            {
                "topic": "kline.1.BTCUSDT",
                "type": "snapshot",
                "ts": start + minute * MINUTE_MS,
                "data": [
                    {
                        "start": start + minute * MINUTE_MS,
                        "end": start + minute * MINUTE_MS + 59_999,
                        "interval": "1",
                        "open": "100",
                        "close": "100",
                        "high": "100",
                        "low": "100",
                        "volume": volume,
                        "turnover": turnover,
                        "confirm": confirm,
                        "timestamp": start + minute * MINUTE_MS,
                    }
                ],
            }
        )

    async def script(ws, number):
        async def on_subscribe(args):
            if args != ["tickers.BTCUSDT"]:
                return  # kline.1.BTCUSDT is subscribed first; send everything once both are
            await ws.send(
                json.dumps(
                    {
                        "topic": "tickers.BTCUSDT",
                        "type": "snapshot",
                        "cs": 1,
                        "ts": start,
                        "data": {"symbol": "BTCUSDT", "lastPrice": "101.5"},
                    }
                )
            )
            await ws.send(kline(0, "2", "200", True))
            await ws.send(kline(1, "1", "106", False))
            await ws.send(
                json.dumps(
                    {
                        "topic": "tickers.BTCUSDT",
                        "type": "delta",
                        "cs": 2,
                        "ts": start + 100,
                        "data": {"symbol": "BTCUSDT", "bid1Price": "101.4"},
                    }
                )
            )
            await ws.send('{"topic":"tickers.BTCUSDT","type":"delta","data":"junk"}')

        await _bybit_server_loop(ws, server, number, on_subscribe)

    market = MarketState()
    market.watch("BTCUSDT", [2, 60])
    clock = iter(range(1_000, 100_000, 1_000))
    async with local_server(script) as server:
        feed = BybitMarketFeed(
            server.url, symbols=["BTCUSDT"], market=market, clock_ms=lambda: next(clock), **FAST
        )
        task = await _run(feed)
        await wait_until_async(lambda: feed.stats.malformed == 1)
        await _stop(feed, task)
    view = market.get("BTCUSDT")
    assert view.last_price == Decimal("101.5")
    assert view.last_price_ms == 4_000  # refreshed by the delta without lastPrice (4th frame)
    assert view.last_candle_ms == 3_000
    assert view.vwap(2) == Decimal("102")  # (200 + 106) / 3
    assert view.vwap(60) == Decimal("102")
    assert feed.stats.events == 4


@pytest.mark.asyncio
async def test_a_flood_of_junk_is_counted_in_full_but_logged_within_the_limit(local_server, caplog):
    async def script(ws, number):
        for index in range(30):
            await ws.send(f"junk {index}")
        await _hold_open(ws)

    caplog.set_level(logging.WARNING, logger="trading.feeds")
    async with local_server(script) as server:
        feed = BinanceLiquidationFeed(server.url, on_event=print, malformed_log_limit_per_minute=3, **FAST)
        task = await _run(feed)
        await wait_until_async(lambda: feed.stats.malformed == 30)
        await _stop(feed, task)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feed_malformed")]
    assert logged == [f"feed_malformed feed=binance reason=invalid_json raw='junk {n}'" for n in range(3)]
    assert feed.stats.malformed_reasons == {"invalid_json": 30}


@pytest.mark.asyncio
async def test_a_feed_stopped_before_it_runs_returns_at_once():
    feed = BinanceLiquidationFeed(f"ws://127.0.0.1:{_free_port()}/x", on_event=print)
    feed.stop()
    await asyncio.wait_for(feed.run(), timeout=1)
    assert feed.stats.connects == 0 and feed.stats.reconnects == 0
