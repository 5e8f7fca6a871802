"""Recording streams into the replay layout, then replaying the recording (against the simulator)."""

import asyncio
import threading
import time

from simulator import record, replay
from simulator.testing import running_simulator


def test_a_recording_of_the_simulator_replays(tmp_path):
    with running_simulator() as sim:
        stop = asyncio.Event()
        box = {}

        def run():
            async def main():
                box["loop"] = asyncio.get_running_loop()
                box["stop"] = stop
                return await record.record(
                    tmp_path,
                    ["BTCUSDT"],
                    0,
                    sim.liquidation_ws_url,
                    "bybit",
                    sim.base_url + "/v5/market/kline",
                    stop=stop,
                )

            box["summary"] = asyncio.run(main())

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 5
        while (
            sim.state()["connections"].get("/market/ws/!forceOrder@arr") != 1 and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        sim.liquidation("BTCUSDT", "SELL", "96500.00", "0.250")
        sim.liquidation("ETHUSDT", "BUY", "3350.00", "2.00")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (tmp_path / "liquidations.jsonl").read_text().count("\n") < 2:
            time.sleep(0.02)
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
    assert box["summary"]["liquidations"] == 2 and box["summary"]["klines"]["BTCUSDT"] >= 1
    data = replay.load(tmp_path)
    assert [event.message["o"]["s"] for event in data.liquidations] == ["BTCUSDT", "ETHUSDT"]
    assert list(data.instruments) == ["BTCUSDT"] and data.klines["BTCUSDT"][-1].close > 0
