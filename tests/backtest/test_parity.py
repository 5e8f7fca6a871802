"""Parity: a recorded slice through the backtest and through the live engine against the
simulator's replay gives the same orders.

The live side is the engine as `run_engine` runs it (real gateway over pybit, real feeds
over websockets, real Redis and database) against the simulator replaying the same slice
at 60x; the backtest runs it in-process on a virtual clock. The cooldown is 0: at 60x a
wall-clock cooldown would last 60 times as long in market time.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from controlpanel.backtest.config import backtest_config
from controlpanel.backtest.runner import backtest_directory
from controlpanel.config_files import config_import
from simulator.testing import running_simulator
from tests.support import REPO
from tests.support.engine import EngineThread, make_runner, wait_for_liquidation_stream
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SAMPLE = REPO / "sample_data"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT")
# Minutes 35 to 60 of the sample day: 14 entries with the coins below.
SLICE_FROM_MS = 1737936000000 + 35 * 60_000
SLICE_TO_MS = 1737936000000 + 60 * 60_000
SLIPPAGE = Decimal("0.0001")  # the simulator's default: 1 bp against the taker


def _coin(symbol: str) -> dict:
    return {
        "symbol": symbol,
        "long_vwap_offset": 0.1,
        "short_vwap_offset": 0.1,
        "lick_value": 100,
        "order_size_usdt": 10,
        "leverage": 10,
        "take_profit_percent": 0.3,
        "stop_loss_percent": 0.3,
        "vwap_window_minutes": 5,
        "entry_cooldown_seconds": 0,
    }


@pytest.fixture
def recorded_slice(tmp_path):
    """Twenty-five minutes of the sample day, five symbols, in the replay layout."""
    (tmp_path / "klines").mkdir()
    for symbol in SYMBOLS:
        rows = [
            line
            for line in (SAMPLE / "klines" / f"{symbol}.csv").read_text().splitlines()
            if line[:1].isdigit() and SLICE_FROM_MS <= int(line.split(",")[0]) < SLICE_TO_MS
        ]
        (tmp_path / "klines" / f"{symbol}.csv").write_text("\n".join(rows) + "\n")
    lines = [
        line
        for line in (SAMPLE / "liquidations.jsonl").read_text().splitlines()
        if line.strip()
        and json.loads(line)["o"]["s"] in SYMBOLS
        and SLICE_FROM_MS <= json.loads(line)["o"]["T"] < SLICE_TO_MS
    ]
    (tmp_path / "liquidations.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def _live_orders(data_dir) -> tuple[list[dict], dict]:
    with running_simulator(data_dir=data_dir, replay_autostart=False, rate_tier="off", speed=60) as sim:
        thread = EngineThread(make_runner(sim)).start()
        try:
            wait_for_liquidation_stream(sim, thread)
            sim.start_replay()
            wait_until(lambda: sim.state()["replay"]["status"] == "done", timeout_s=60, what="the replay")
            wait_until(lambda: thread.engine.orders_in_flight == 0, what="the last order's answer")
            state = sim.state()
        finally:
            thread.stop()
    orders = [o for o in state["orders"] if o["orderLinkId"].startswith("wl-entry")]
    return orders, state["wallet"]


def test_the_backtest_sends_the_orders_the_live_engine_sends(recorded_slice, redis_db):
    config_import(coins=[_coin(symbol) for symbol in SYMBOLS])
    coins, risk = backtest_config()
    backtest = backtest_directory(recorded_slice, coins=coins, risk=risk)
    assert len(backtest.orders) >= 10

    # The engine runs here without the worker's TP/SL upkeep: positions keep the TP/SL
    # sent with the entry; the backtest for the wallet's comparison does the same.
    as_live = backtest_directory(recorded_slice, coins=coins, risk=risk, tpsl_upkeep=False)

    live, wallet = _live_orders(recorded_slice)
    assert [(o["symbol"], o["side"], Decimal(o["qty"])) for o in live] == [
        (o["symbol"], o["side"], Decimal(o["qty"])) for o in backtest.orders
    ]
    for live_order, order in zip(live, backtest.orders, strict=True):
        assert not live_order["rejectCode"] and "refused" not in order
        live_price, price = Decimal(live_order["avgPrice"]), Decimal(order["fill_price"])
        # Both fill at the last price plus 1 bp against the taker, rounded to the tick.
        assert abs(live_price - price) <= price * SLIPPAGE * 2

    # The same fills and the same TP/SL closes: the report's equity is the venue's.
    assert as_live.orders == backtest.orders
    assert abs(Decimal(wallet["totalEquity"]) - as_live.end_equity) < Decimal("0.0001")
    assert abs(Decimal(wallet["totalWalletBalance"]) - as_live.wallet_balance) < Decimal("0.0001")
