"""Websockets: Bybit public and private streams through pybit, Binance's liquidation stream
through a plain `websockets` client, protocol details, DCP."""

import asyncio
import json
import time

import pytest
import websockets
from pybit.exceptions import InvalidRequestError

from tests.support.waiting import wait_until


async def _collect(url, count, timeout=5.0, before=None):
    messages = []
    async with websockets.connect(url) as connection:
        if before is not None:
            await asyncio.to_thread(before)
        try:
            while len(messages) < count:
                messages.append(json.loads(await asyncio.wait_for(connection.recv(), timeout)))
        except TimeoutError:
            pass
    return messages


def collect(url, count, timeout=5.0, before=None):
    """Connect, run `before` (in a thread), then read up to `count` JSON messages."""
    return asyncio.run(_collect(url, count, timeout, before))


def test_public_streams_follow_the_price(sim, public_ws, inbox):
    ws = public_ws()
    tickers, trades, klines = inbox(), inbox(), inbox()
    ws.ticker_stream("SOLUSDT", tickers)
    ws.trade_stream("SOLUSDT", trades)
    ws.kline_stream(1, "SOLUSDT", klines)
    tickers.wait_for(lambda m: True)
    sim.set_price("SOLUSDT", "181.500")
    ticker = tickers.wait_for(lambda m: m["data"]["lastPrice"] == "181.500")
    assert ticker["data"]["tickDirection"] == "PlusTick"
    trade = trades.wait_for(lambda m: True)["data"][0]
    assert (trade["s"], trade["p"], trade["S"]) == ("SOLUSDT", "181.500", "Buy")
    candle = klines.wait_for(lambda m: m["data"][0]["close"] == "181.500")["data"][0]
    assert candle["high"] == "181.500" and candle["confirm"] is False and candle["interval"] == "1"


def test_bybit_all_liquidation_uses_the_position_side(sim, public_ws, inbox, subscribed):
    ws = public_ws()
    liquidations = inbox()
    ws.all_liquidation_stream("ETHUSDT", liquidations)
    subscribed(sim, "allLiquidation.ETHUSDT")
    sim.liquidation("ETHUSDT", "SELL", "3250.00", "12.50")  # Binance SELL: a long was liquidated
    sim.liquidation("ETHUSDT", "BUY", "3350.00", "1.00")
    message = liquidations.wait_for(lambda m: len(m["data"]) == 2 or m["data"][-1]["S"] == "Sell", timeout=3)
    sides = [row["S"] for m in liquidations.messages for row in m["data"]]
    assert sides == ["Buy", "Sell"]
    assert message["topic"] == "allLiquidation.ETHUSDT" and message["type"] == "snapshot"


@pytest.mark.parametrize("path", ["/market/ws/!forceOrder@arr", "/ws/!forceOrder@arr"])
def test_the_binance_stream_sends_one_force_order_event_per_message(sim, path):
    url = f"ws://127.0.0.1:{sim.port}{path}"
    messages = collect(
        url,
        2,
        before=lambda: (
            sim.liquidation("BTCUSDT", "SELL", "96000.00", "0.014"),
            sim.liquidation("XRPUSDT", "BUY", "2.6000", "500"),
        ),
    )
    assert [m["o"]["s"] for m in messages] == ["BTCUSDT", "XRPUSDT"]
    event = messages[0]
    assert event["e"] == "forceOrder" and isinstance(event["E"], int)
    assert set(event["o"]) == {"s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T"}
    assert (event["o"]["S"], event["o"]["q"], event["o"]["p"], event["o"]["X"]) == (
        "SELL",
        "0.014",
        "96000.00",
        "FILLED",
    )


def test_a_symbol_stream_and_the_combined_form(sim):
    url = f"ws://127.0.0.1:{sim.port}/market/ws/xrpusdt@forceOrder"
    messages = collect(
        url,
        1,
        before=lambda: (
            sim.liquidation("BTCUSDT", "SELL", "96000.00", "0.014"),
            sim.liquidation("XRPUSDT", "BUY", "2.6000", "500"),
        ),
    )
    assert [m["o"]["s"] for m in messages] == ["XRPUSDT"]
    url = f"ws://127.0.0.1:{sim.port}/market/stream?streams=!forceOrder@arr"
    messages = collect(url, 1, before=lambda: sim.liquidation("BTCUSDT", "SELL", "96000.00", "0.014"))
    assert messages[0]["stream"] == "!forceOrder@arr" and messages[0]["data"]["e"] == "forceOrder"


def test_json_pings_get_pongs_that_pybit_accepts_and_subscribes_echo_req_id(sim):
    async def talk():
        async with websockets.connect(sim.public_ws_url) as connection:
            await connection.send(json.dumps({"op": "ping", "req_id": "p"}))
            pong = json.loads(await connection.recv())
            await connection.send(
                json.dumps({"op": "subscribe", "req_id": "abc", "args": ["publicTrade.BTCUSDT"]})
            )
            subscribed = json.loads(await connection.recv())
            await connection.send(json.dumps({"op": "subscribe", "req_id": "bad", "args": ["tickers.NOPE"]}))
            refused = json.loads(await connection.recv())
            pong_frame = await connection.ping()
            await asyncio.wait_for(pong_frame, 2)  # protocol pings are answered
            return pong, subscribed, refused

    pong, subscribed, refused = asyncio.run(talk())
    assert pong["ret_msg"] == "pong" and pong["success"] is True and pong["op"] == "ping" and pong["conn_id"]
    assert (subscribed["success"], subscribed["req_id"], subscribed["op"]) == (True, "abc", "subscribe")
    assert refused["success"] is False


def test_private_streams_report_orders_positions_executions_and_wallet(
    sim, session, private_ws, inbox, subscribed
):
    ws = private_ws()
    orders, positions, executions, wallets = inbox(), inbox(), inbox(), inbox()
    ws.order_stream(orders)
    ws.position_stream(positions)
    ws.execution_stream(executions)
    ws.wallet_stream(wallets)
    subscribed(sim, "order", "position", "execution", "wallet")
    session.place_order(
        category="linear",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.50",
        price="3290.00",
        orderLinkId="ws-1",
    )
    assert orders.wait_for(lambda m: m["data"][0]["orderLinkId"] == "ws-1")["data"][0]["orderStatus"] == "New"
    sim.set_price("ETHUSDT", "3290.00")
    filled = orders.wait_for(lambda m: m["data"][0]["orderStatus"] == "Filled")["data"][0]
    assert filled["cumExecQty"] == "0.50"
    position = positions.wait_for(lambda m: m["data"][0]["size"] == "0.50")
    assert position["topic"] == "position" and position["data"][0]["entryPrice"] == "3290"
    for key in ("id", "topic", "creationTime", "data"):
        assert key in position
    execution = executions.wait_for(lambda m: True)["data"][0]
    assert (execution["execQty"], execution["isMaker"]) == ("0.50", True)
    assert wallets.wait_for(lambda m: m["data"][0]["totalInitialMargin"] == "164.5")


def test_a_dropped_private_connection_reconnects_and_resumes(sim, session, private_ws, inbox, subscribed):
    ws = private_ws()
    orders = inbox()
    ws.order_stream(orders)
    subscribed(sim, "order")
    assert sim.state()["connections"] == {"/v5/private": 1}
    dropped = sim.fault("/v5/private", mode="drop_ws", count=0)
    assert dropped["dropped"] == 1
    # pybit reconnects, authenticates and resubscribes by itself.
    subscribed(sim, "order")
    session.place_order(
        category="linear",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Market",
        qty="0.10",
        orderLinkId="after-drop",
    )
    orders.wait_for(lambda m: m["data"][0]["orderLinkId"] == "after-drop", timeout=5)


def test_dcp_cancels_open_orders_when_every_dcp_connection_is_gone_longer_than_the_window(
    sim, session, private_ws, subscribed
):
    sim.configure(dcp_enabled=True)
    session.set_dcp(product="DERIVATIVES", timeWindow=3)
    info = session.query_dcp_info()["result"]["dcpInfos"]
    assert {"product": "DERIVATIVES", "dcpStatus": "ON", "timeWindow": "3"} in info
    watcher = private_ws()
    watcher.subscribe("dcp.future", lambda message: None, symbol="")
    bystander = private_ws()  # a private connection without the dcp subscription doesn't count
    bystander.order_stream(lambda message: None)
    subscribed(sim, "dcp.future", "order")
    session.place_order(
        category="linear",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.10",
        price="3000.00",
        orderLinkId="guarded",
    )
    watcher.exit()
    gone = time.monotonic()
    time.sleep(2.0)
    assert session.get_open_orders(category="linear", symbol="ETHUSDT")["result"][
        "list"
    ]  # still inside the window
    wait_until(
        lambda: not session.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"],
        timeout_s=3,
    )
    assert time.monotonic() - gone >= 2.8  # the server saw the close a little before exit() returned
    order = session.get_open_orders(category="linear", symbol="ETHUSDT", orderLinkId="guarded")["result"][
        "list"
    ][0]
    assert (order["orderStatus"], order["cancelType"]) == ("Cancelled", "CancelByDCP")


def test_dcp_does_not_fire_while_a_dcp_connection_lives(sim, session, private_ws, subscribed):
    sim.configure(dcp_enabled=True)
    session.set_dcp(product="DERIVATIVES", timeWindow=3)
    ws = private_ws()
    ws.subscribe("dcp.future", lambda message: None, symbol="")
    subscribed(sim, "dcp.future")
    session.place_order(
        category="linear", symbol="ETHUSDT", side="Buy", orderType="Limit", qty="0.10", price="3000.00"
    )
    time.sleep(3.5)
    assert session.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"]
    assert sim.state()["dcp"]["fired"] == 0


def test_an_account_without_dcp_refuses_the_window_and_never_cancels_by_dcp(
    sim, session, private_ws, subscribed
):
    assert sim.state()["settings"]["dcpEnabled"] is False  # the default, as on a retail account
    with pytest.raises(InvalidRequestError) as refused:
        session.set_dcp(product="DERIVATIVES", timeWindow=3)
    assert refused.value.status_code == 10005
    assert session.query_dcp_info()["result"]["dcpInfos"] == []
    # A window set while the account had DCP, then DCP switched off: nothing fires.
    sim.configure(dcp_enabled=True)
    session.set_dcp(product="DERIVATIVES", timeWindow=3)
    sim.configure(dcp_enabled=False)
    watcher = private_ws()
    watcher.subscribe("dcp.future", lambda message: None, symbol="")
    subscribed(sim, "dcp.future")
    session.place_order(
        category="linear", symbol="ETHUSDT", side="Buy", orderType="Limit", qty="0.10", price="3000.00"
    )
    watcher.exit()
    time.sleep(3.8)
    assert session.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"]
    assert sim.state()["dcp"]["fired"] == 0
