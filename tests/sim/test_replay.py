"""Replaying a recorded day (tests/resources/binance/usdm_2025-01-27: real Binance data, see
tests/resources/README.md)."""

import asyncio
import csv
import json
import time
from decimal import Decimal

import websockets

from simulator.testing import running_simulator
from tests.support.resources import BINANCE_REPLAY
from tests.support.sim import LocalWebSocket


def recorded_liquidations(directory=BINANCE_REPLAY):
    return [json.loads(line) for line in (directory / "liquidations.jsonl").read_text().splitlines() if line]


async def _listen(urls, count, start, timeout=10.0):
    connections = [await websockets.connect(url) for url in urls]
    try:
        await asyncio.to_thread(start)
        received = [[] for _ in urls]
        for connection, messages in zip(connections, received, strict=True):
            while len(messages) < count:
                text = await asyncio.wait_for(connection.recv(), timeout)
                messages.append((time.monotonic(), json.loads(text)))
        return received
    finally:
        for connection in connections:
            await connection.close()


def test_the_recorded_liquidations_come_out_in_order_on_both_binance_paths(inbox, subscribed):
    recorded = recorded_liquidations()
    with running_simulator(data_dir=BINANCE_REPLAY, speed="max", replay_autostart=False) as sim:
        xrp = inbox()
        bybit = LocalWebSocket(sim.public_ws_url, channel_type="linear")
        bybit.all_liquidation_stream("XRPUSDT", xrp)
        subscribed(sim, "allLiquidation.XRPUSDT")
        urls = [
            f"ws://127.0.0.1:{sim.port}/market/ws/!forceOrder@arr",
            f"ws://127.0.0.1:{sim.port}/ws/!forceOrder@arr",
        ]
        received = asyncio.run(_listen(urls, len(recorded), sim.start_replay))
        state = sim.state()
        offset = state["replay"]["offsetMs"]
        assert state["replay"]["liquidationsEmitted"] == len(recorded) == 259
        for messages in received:
            events = [message for _, message in messages]
            assert [event["o"]["s"] for event in events] == [event["o"]["s"] for event in recorded]
            for event, original in zip(events, recorded, strict=True):
                # Everything verbatim but the times, which move onto the market clock.
                assert {k: v for k, v in event["o"].items() if k != "T"} == {
                    k: v for k, v in original["o"].items() if k != "T"
                }
                assert event["o"]["T"] == original["o"]["T"] + offset
                assert event["E"] == original["E"] + offset
        # Bybit's allLiquidation carries the same events, sides turned into position sides.
        xrp_recorded = [event["o"] for event in recorded if event["o"]["s"] == "XRPUSDT"]
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and sum(len(m["data"]) for m in xrp.messages) < len(xrp_recorded):
            time.sleep(0.05)
        bybit.exit()
        rows = [row for message in xrp.messages for row in message["data"]]
        assert [(row["S"], row["v"], row["p"]) for row in rows] == [
            ("Buy" if o["S"] == "SELL" else "Sell", o["q"], o["p"]) for o in xrp_recorded
        ]


def test_replayed_candles_repeat_the_recorded_klines_and_instruments_follow_the_data(make_session):
    with running_simulator(data_dir=BINANCE_REPLAY, speed="max") as sim:
        session = make_session(sim)
        deadline = time.monotonic() + 10
        while sim.state()["replay"]["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        offset = sim.state()["replay"]["offsetMs"]
        symbols = [row["symbol"] for row in session.get_instruments_info(category="linear")["result"]["list"]]
        assert sorted(symbols) == ["ADAUSDT", "BTCUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"]
        with (BINANCE_REPLAY / "klines" / "BTCUSDT.csv").open() as handle:
            recorded = [row for row in csv.reader(handle) if row[0].isdigit()]
        answer = session.get_kline(category="linear", symbol="BTCUSDT", interval="1", limit=1000)["result"][
            "list"
        ]
        replayed = {int(row[0]) - offset: row for row in answer}
        for row in recorded:
            candle = replayed[int(row[0])]
            assert [Decimal(value) for value in candle[1:6]] == [Decimal(value) for value in row[1:6]]
        last_close = Decimal(recorded[-1][4])
        ticker = session.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]
        assert Decimal(ticker["lastPrice"]) == last_close


def test_the_replay_runs_at_the_speed_factor(tmp_path):
    (tmp_path / "klines").mkdir()
    minute = 1737996300000
    (tmp_path / "klines" / "BTCUSDT.csv").write_text(
        f"{minute},100000.0,100100.0,99900.0,100050.0,10.000,{minute + 59999},0,0,0,0,0\n"
        f"{minute + 60000},100050.0,100060.0,100000.0,100010.0,10.000,{minute + 119999},0,0,0,0,0\n"
    )
    events = [
        {
            "e": "forceOrder",
            "E": minute + at,
            "o": {
                "s": "BTCUSDT",
                "S": "SELL",
                "o": "LIMIT",
                "f": "IOC",
                "q": "0.010",
                "p": "99000.0",
                "ap": "99950.0",
                "X": "FILLED",
                "l": "0.010",
                "z": "0.010",
                "T": minute + at,
            },
        }
        for at in (10_000, 40_000)
    ]
    (tmp_path / "liquidations.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    with running_simulator(data_dir=tmp_path, speed=20, replay_autostart=False) as sim:
        url = f"ws://127.0.0.1:{sim.port}/market/ws/!forceOrder@arr"
        ((first, second),) = asyncio.run(_listen([url], 2, sim.start_replay))
        assert 1.2 <= second[0] - first[0] <= 2.2  # 30 s of recording at 20x


def test_at_speed_1_the_replay_runs_on_the_wall_clock(tmp_path):
    """Event times compare with the consumer's clock (the engine skips liquidations older
    than max_event_age_ms): the part of the first minute already past is played at once,
    then market time is wall time, not up to a minute behind it."""
    now = int(time.time() * 1000)
    # Both liquidations inside the minute the replay starts in, the past one 5 s back in it.
    if not 6_000 <= now % 60_000 <= 50_000:
        time.sleep(((6_050 - now % 60_000) % 60_000) / 1000)
        now = int(time.time() * 1000)
    minute = 1737996300000  # the recording's first minute; the replay rebases it onto this one
    (tmp_path / "klines").mkdir()
    (tmp_path / "klines" / "BTCUSDT.csv").write_text(
        "".join(
            f"{minute + i * 60_000},100000.0,100100.0,99900.0,100050.0,10.000,{minute + i * 60_000 + 59_999}"
            ",0,0,0,0,0\n"
            for i in range(3)
        )
    )
    in_minute = now % 60_000
    events = [  # one already past when the replay starts, one 2 s ahead
        {
            "e": "forceOrder",
            "E": minute + at,
            "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.010", "p": "99000.0"}
            | {"ap": "99950.0", "X": "FILLED", "l": "0.010", "z": "0.010", "T": minute + at},
        }
        for at in (max(0, in_minute - 5_000), in_minute + 2_000)
    ]
    (tmp_path / "liquidations.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
    with running_simulator(data_dir=tmp_path, speed=1, replay_autostart=False) as sim:
        url = f"ws://127.0.0.1:{sim.port}/market/ws/!forceOrder@arr"
        ((past, current),) = asyncio.run(_listen([url], 2, sim.start_replay))
        received_ms = time.time() * 1000 - (time.monotonic() - current[0]) * 1000
        state = sim.state()
    assert abs(state["marketTime"] - state["time"]) < 500  # market time is wall time
    assert abs(received_ms - current[1]["o"]["T"]) < 500  # its event time is when it was sent
    assert 1.0 < current[0] - past[0] < 3.0  # the past one came at once, this one 2 s later
    assert received_ms - past[1]["o"]["T"] > 4_000  # and says how old it is
