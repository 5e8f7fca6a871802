"""Orders through the real pybit client: Bybit's refusals, fills, reduce-only, TP/SL."""

from decimal import Decimal

import pytest
from pybit.exceptions import InvalidRequestError


def refusal(call, **params) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        call(**params)
    return caught.value


def market(session, side, qty, symbol="BTCUSDT", **extra):
    return session.place_order(
        category="linear", symbol=symbol, side=side, orderType="Market", qty=qty, **extra
    )


def position(session, symbol="BTCUSDT"):
    return session.get_positions(category="linear", symbol=symbol)["result"]["list"][0]


def test_a_market_buy_fills_at_the_last_price_plus_one_basis_point(sim, session):
    answer = market(session, "Buy", "0.010", orderLinkId="entry-1")
    assert answer["result"]["orderLinkId"] == "entry-1"
    row = position(session)
    assert (row["side"], row["size"], row["avgPrice"]) == ("Buy", "0.010", "97009.7")
    assert row["positionIM"] == "97.0097"  # value / leverage 10
    execution = session.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert (execution["execPrice"], execution["feeRate"], execution["isMaker"]) == (
        "97009.70",
        "0.00055",
        False,
    )
    assert Decimal(execution["execFee"]) == Decimal("970.097") * Decimal("0.00055")
    wallet = session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert Decimal(wallet["totalWalletBalance"]) == Decimal("10000") - Decimal("0.53355335")
    assert wallet["totalInitialMargin"] == "97.0097"
    assert Decimal(wallet["accountIMRate"]) == Decimal("0.0097")


def test_a_reduce_only_order_that_would_open_a_position_is_refused_with_110017(session):
    problem = refusal(market, session=session, side="Sell", qty="0.010", reduceOnly=True)
    assert problem.status_code == 110017
    market(session, "Buy", "0.010")
    problem = refusal(market, session=session, side="Buy", qty="0.010", reduceOnly=True)
    assert problem.status_code == 110017  # same side as the long: it would increase it


def test_a_reduce_only_qty_larger_than_the_position_is_cut_to_the_position(sim, session):
    market(session, "Buy", "0.010")
    market(session, "Sell", "0.050", reduceOnly=True, orderLinkId="close-1")
    assert position(session)["size"] == "0.000"
    order = session.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="close-1")["result"][
        "list"
    ][0]
    assert (order["qty"], order["cumExecQty"], order["orderStatus"]) == ("0.010", "0.010", "Filled")


def test_an_order_beyond_the_available_balance_is_refused_with_110007(session):
    # 10 BTC at 97,000 with 10x leverage needs 97,000 USDT of margin; the account holds 10,000.
    assert refusal(market, session=session, side="Buy", qty="10.000").status_code == 110007
    session.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="100", sellLeverage="100")
    market(session, "Buy", "1.000")  # 970 USDT of margin at 100x


@pytest.mark.parametrize(
    "params, text",
    [
        ({"qty": "0.0015"}, "qtyStep"),
        ({"qty": "0.0001"}, "qtyStep"),
        ({"qty": "0"}, "positive"),
        ({"side": "buy"}, "side"),
        ({"qty": None}, "qty is required"),
        ({"orderType": "Limit"}, "price is required"),
        ({"orderType": "Limit", "price": "97000.05"}, "tickSize"),
        ({"qty": "600.000"}, "maxMktOrderQty"),
        ({"positionIdx": 1}, "position idx not match position mode"),
        ({"timeInForce": "GTD"}, "timeInForce"),
        ({"symbol": "NOPEUSDT"}, "symbol"),
    ],
)
def test_bad_order_parameters_are_refused_with_10001_and_a_clear_message(session, params, text):
    order = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.001"}
    order.update(params)
    order = {key: value for key, value in order.items() if value is not None}
    problem = refusal(session.place_order, **order)
    assert problem.status_code == 10001
    assert text in problem.message


def test_qty_below_min_order_qty_is_10001(session):
    problem = refusal(market, session=session, side="Buy", qty="0.1", symbol="LINKUSDT")
    assert problem.status_code == 110094  # 0.1 LINK at 20 USDT is 2 USDT: below the 5 USDT minimum
    problem = refusal(market, session=session, side="Buy", qty="0.05", symbol="LINKUSDT")
    assert problem.status_code == 10001


def test_an_order_below_the_minimum_notional_is_refused_with_110094(session):
    problem = refusal(market, session=session, side="Buy", qty="1", symbol="DOGEUSDT")
    assert problem.status_code == 110094
    market(session, "Buy", "16", symbol="DOGEUSDT")  # 16 * 0.33 = 5.28 USDT


def test_a_closing_order_below_the_minimum_notional_is_accepted(session):
    market(session, "Buy", "20", symbol="DOGEUSDT")
    market(session, "Sell", "5", symbol="DOGEUSDT", reduceOnly=True)
    assert position(session, "DOGEUSDT")["size"] == "15"


def test_a_reused_order_link_id_is_refused_with_110072(session):
    market(session, "Buy", "0.010", orderLinkId="once")
    assert refusal(market, session=session, side="Buy", qty="0.010", orderLinkId="once").status_code == 110072


def test_cancelling_an_unknown_order_is_110001(session):
    problem = refusal(session.cancel_order, category="linear", symbol="BTCUSDT", orderId="no-such-order")
    assert problem.status_code == 110001


def test_a_resting_limit_buy_fills_as_maker_when_the_price_falls_through_it(sim, session):
    order_id = session.place_order(
        category="linear", symbol="ETHUSDT", side="Buy", orderType="Limit", qty="1.00", price="3200.00"
    )["result"]["orderId"]
    assert (
        session.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"][0]["orderId"]
        == order_id
    )
    wallet = session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert wallet["coin"][0]["totalOrderIM"] == "320"
    sim.set_price("ETHUSDT", "3250.00")
    assert position(session, "ETHUSDT")["size"] == "0.00"
    sim.set_price("ETHUSDT", "3199.50")
    row = position(session, "ETHUSDT")
    assert (row["size"], row["avgPrice"]) == ("1.00", "3200")
    execution = session.get_executions(category="linear", orderId=order_id)["result"]["list"][0]
    assert (execution["isMaker"], execution["feeRate"], execution["execPrice"]) == (True, "0.0002", "3200.00")
    assert session.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"] == []


def test_time_in_force_rules(sim, session):
    def limit(price, tif, link):
        session.place_order(
            category="linear",
            symbol="ETHUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.10",
            price=price,
            timeInForce=tif,
            orderLinkId=link,
        )
        return session.get_open_orders(category="linear", symbol="ETHUSDT", orderLinkId=link)["result"][
            "list"
        ][0]

    assert limit("3200.00", "IOC", "ioc")["orderStatus"] == "Cancelled"
    assert limit("3200.00", "FOK", "fok")["orderStatus"] == "Cancelled"
    post_only = limit("3400.00", "PostOnly", "post")
    assert (post_only["orderStatus"], post_only["rejectReason"]) == (
        "Cancelled",
        "EC_PostOnlyWillTakeLiquidity",
    )
    taker = limit("3400.00", "GTC", "cross")
    assert (taker["orderStatus"], taker["avgPrice"]) == ("Filled", "3300.33")  # at the ask, not the limit
    assert limit("3200.00", "PostOnly", "rest")["orderStatus"] == "New"


def test_a_lookup_by_order_link_id_finds_the_order_in_any_state(session):
    market(session, "Buy", "0.010", orderLinkId="filled-one")
    open_only = session.get_open_orders(category="linear", settleCoin="USDT")["result"]["list"]
    assert open_only == []
    found = session.get_open_orders(category="linear", settleCoin="USDT", orderLinkId="filled-one")
    assert found["result"]["list"][0]["orderStatus"] == "Filled"
    assert session.get_open_orders(category="linear", orderLinkId="never-sent")["result"]["list"] == []


def test_take_profit_closes_the_whole_position_reduce_only_when_the_price_crosses(sim, session):
    market(session, "Buy", "0.020")
    session.set_trading_stop(
        category="linear",
        symbol="BTCUSDT",
        tpslMode="Full",
        positionIdx=0,
        takeProfit="98000.00",
        stopLoss="95000.00",
    )
    row = position(session)
    assert (row["takeProfit"], row["stopLoss"]) == ("98000.00", "95000.00")
    legs = session.get_open_orders(category="linear", symbol="BTCUSDT", orderFilter="StopOrder")["result"][
        "list"
    ]
    assert sorted((leg["stopOrderType"], leg["orderStatus"], leg["side"]) for leg in legs) == [
        ("StopLoss", "Untriggered", "Sell"),
        ("TakeProfit", "Untriggered", "Sell"),
    ]
    market(session, "Buy", "0.010")  # Full mode: the legs follow the position size
    sim.set_price("BTCUSDT", "97900.00")
    assert position(session)["size"] == "0.030"
    sim.set_price("BTCUSDT", "98000.00")
    row = position(session)
    assert (row["size"], row["side"], row["takeProfit"]) == ("0.000", "", "0")
    closes = session.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]
    by_type = {order["stopOrderType"]: order for order in closes}
    assert (by_type["TakeProfit"]["orderStatus"], by_type["TakeProfit"]["cumExecQty"]) == ("Filled", "0.030")
    assert by_type["TakeProfit"]["reduceOnly"] is True
    assert by_type["StopLoss"]["orderStatus"] == "Deactivated"
    closed = session.get_closed_pnl(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert closed["closedSize"] == "0.030" and Decimal(closed["closedPnl"]) > 0


def test_stop_loss_fires_on_a_fall_for_a_long_and_on_a_rise_for_a_short(sim, session):
    market(session, "Sell", "1.00", symbol="ETHUSDT")
    session.set_trading_stop(
        category="linear", symbol="ETHUSDT", tpslMode="Full", positionIdx=0, stopLoss="3400.00"
    )
    sim.set_price("ETHUSDT", "3400.00")
    assert position(session, "ETHUSDT")["size"] == "0.00"


def test_trading_stop_rules(sim, session):
    problem = refusal(
        session.set_trading_stop,
        category="linear",
        symbol="BTCUSDT",
        tpslMode="Full",
        positionIdx=0,
        takeProfit="99000",
    )
    assert problem.status_code == 10001  # no position to protect
    market(session, "Buy", "0.010")
    problem = refusal(
        session.set_trading_stop,
        category="linear",
        symbol="BTCUSDT",
        tpslMode="Full",
        positionIdx=0,
        takeProfit="90000",
    )
    assert problem.status_code == 10001 and "higher" in problem.message
    session.set_trading_stop(
        category="linear", symbol="BTCUSDT", tpslMode="Full", positionIdx=0, takeProfit="99000"
    )
    problem = refusal(
        session.set_trading_stop,
        category="linear",
        symbol="BTCUSDT",
        tpslMode="Full",
        positionIdx=0,
        takeProfit="99000",
    )
    assert problem.status_code == 34040
    session.set_trading_stop(
        category="linear", symbol="BTCUSDT", tpslMode="Full", positionIdx=0, takeProfit="0"
    )
    assert position(session)["takeProfit"] == "0"
    assert session.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []


def test_cancel_all_without_a_filter_also_removes_tp_sl_but_order_filter_keeps_them(session):
    market(session, "Buy", "0.010")
    session.set_trading_stop(
        category="linear", symbol="BTCUSDT", tpslMode="Full", positionIdx=0, stopLoss="90000"
    )
    session.place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.010", price="80000"
    )
    only_orders = session.cancel_all_orders(category="linear", settleCoin="USDT", orderFilter="Order")
    assert len(only_orders["result"]["list"]) == 1
    assert position(session)["stopLoss"] == "90000.00"
    everything = session.cancel_all_orders(category="linear", symbol="BTCUSDT")
    assert len(everything["result"]["list"]) == 1
    assert position(session)["stopLoss"] == "0"


def test_set_leverage_changes_initial_margin_and_answers_110043_when_unchanged(session):
    market(session, "Buy", "0.010")
    session.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="5", sellLeverage="5")
    row = position(session)
    assert (row["leverage"], row["positionIM"]) == ("5", "194.0194")
    problem = refusal(
        session.set_leverage, category="linear", symbol="BTCUSDT", buyLeverage="5", sellLeverage="5"
    )
    assert problem.status_code == 110043
    problem = refusal(
        session.set_leverage, category="linear", symbol="BTCUSDT", buyLeverage="101", sellLeverage="101"
    )
    assert problem.status_code == 10001


def test_realised_pnl_and_fees_reach_the_wallet_when_a_position_closes(sim, session):
    market(session, "Buy", "1.00", symbol="ETHUSDT")  # fills at 3300.33
    sim.set_price("ETHUSDT", "3400.00")
    market(session, "Sell", "1.00", symbol="ETHUSDT", reduceOnly=True)  # fills at 3399.66
    fees = (Decimal("3300.33") + Decimal("3399.66")) * Decimal("0.00055")
    expected = Decimal("10000") + Decimal("99.33") - fees
    wallet = session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert Decimal(wallet["totalWalletBalance"]) == expected.quantize(Decimal("0.00000001"))
    closed = session.get_closed_pnl(category="linear", symbol="ETHUSDT")["result"]["list"][0]
    assert Decimal(closed["closedPnl"]) == (Decimal("99.33") - fees).quantize(Decimal("0.00000001"))
    row = position(session, "ETHUSDT")
    assert Decimal(row["cumRealisedPnl"]) == (Decimal("99.33") - fees).quantize(Decimal("0.00000001"))


def test_position_list_by_settle_coin_shows_open_positions_only_and_pages(session):
    assert session.get_positions(category="linear", settleCoin="USDT")["result"]["list"] == []
    flat = session.get_positions(category="linear", symbol="SOLUSDT")["result"]["list"][0]
    assert (flat["size"], flat["side"], flat["positionIdx"]) == ("0.0", "", 0)
    for symbol, qty in (("BTCUSDT", "0.010"), ("ETHUSDT", "0.10"), ("SOLUSDT", "1.0")):
        market(session, "Buy", qty, symbol=symbol)
    first = session.get_positions(category="linear", settleCoin="USDT", limit=2)["result"]
    assert len(first["list"]) == 2 and first["nextPageCursor"]
    second = session.get_positions(
        category="linear", settleCoin="USDT", limit=2, cursor=first["nextPageCursor"]
    )["result"]
    assert len(second["list"]) == 1 and second["nextPageCursor"] == ""


def test_batch_orders_answer_per_order_and_the_envelope_says_zero(session):
    answer = session.place_batch_order(
        category="linear",
        request=[
            {
                "symbol": "ETHUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.10",
                "price": "3000.00",
                "orderLinkId": "batch-ok",
            },
            {"symbol": "ETHUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "3000.00"},
            {"symbol": "ETHUSDT", "side": "Sell", "orderType": "Market", "qty": "0.10", "reduceOnly": True},
        ],
    )
    assert answer["retCode"] == 0
    codes = [item["code"] for item in answer["retExtInfo"]["list"]]
    assert codes == [0, 10001, 110017]
    ids = [item["orderId"] for item in answer["result"]["list"]]
    assert ids[0] and ids[1] == "" and ids[2] == ""
    problem = refusal(
        session.place_batch_order,
        category="linear",
        request=[{"symbol": "ETHUSDT", "side": "Buy", "orderType": "Market", "qty": "0.10"}] * 21,
    )
    assert problem.status_code == 10001


def test_hedge_mode_takes_position_idx_1_and_2(session):
    session.switch_position_mode(category="linear", symbol="BTCUSDT", mode=3)
    problem = refusal(market, session=session, side="Buy", qty="0.010")
    assert problem.status_code == 10001 and problem.message == "position idx not match position mode"
    market(session, "Buy", "0.010", positionIdx=1)
    market(session, "Sell", "0.010", positionIdx=2)
    rows = session.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [(row["positionIdx"], row["side"], row["size"]) for row in rows] == [
        (1, "Buy", "0.010"),
        (2, "Sell", "0.010"),
    ]
    assert (
        refusal(session.switch_position_mode, category="linear", symbol="BTCUSDT", mode=0).status_code
        == 110024
    )
    market(session, "Sell", "0.010", positionIdx=1)  # closes the long side
    assert session.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]["size"] == "0.000"


def test_state_lists_every_order_received_with_refusals_and_arrival_time(sim, session):
    market(session, "Buy", "0.010", orderLinkId="state-1")
    with pytest.raises(InvalidRequestError):
        market(session, "Sell", "0.500", reduceOnly=True, orderLinkId="state-2", symbol="ETHUSDT")
    orders = sim.state()["orders"]
    assert [(o["orderLinkId"], o["orderStatus"], o["rejectCode"]) for o in orders] == [
        ("state-1", "Filled", None),
        ("state-2", "Rejected", 110017),
    ]
    assert orders[0]["receivedNs"] < orders[1]["receivedNs"]
    for key in ("orderId", "symbol", "side", "orderType", "qty", "price", "reduceOnly", "createdTime"):
        assert key in orders[0]
    state = sim.state()
    assert state["positions"][0]["symbol"] == "BTCUSDT" and state["wallet"]["accountType"] == "UNIFIED"


def test_reset_sets_a_fresh_account_with_the_given_equity(sim, session):
    market(session, "Buy", "0.010")
    sim.reset(equity="2500")
    wallet = session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert (wallet["totalEquity"], wallet["totalInitialMargin"]) == ("2500", "0")
    assert session.get_positions(category="linear", settleCoin="USDT")["result"]["list"] == []
    assert sim.state()["orders"] == []


def test_a_conditional_order_waits_untriggered_and_fires_when_the_price_crosses(sim, session):
    problem = refusal(
        session.place_order,
        category="linear",
        symbol="SOLUSDT",
        side="Buy",
        orderType="Market",
        qty="1.0",
        triggerPrice="170.000",
        triggerDirection=1,
    )
    assert problem.status_code == 110092  # "rise" to a price below the market
    session.place_order(
        category="linear",
        symbol="SOLUSDT",
        side="Buy",
        orderType="Market",
        qty="1.0",
        triggerPrice="185.000",
        triggerDirection=1,
        orderLinkId="breakout",
    )
    order = session.get_open_orders(category="linear", symbol="SOLUSDT", orderLinkId="breakout")["result"][
        "list"
    ][0]
    assert (order["orderStatus"], order["stopOrderType"], order["triggerPrice"]) == (
        "Untriggered",
        "Stop",
        "185.000",
    )
    sim.set_price("SOLUSDT", "184.990")
    assert position(session, "SOLUSDT")["size"] == "0.0"
    sim.set_price("SOLUSDT", "185.000")
    assert position(session, "SOLUSDT")["size"] == "1.0"
    order = session.get_open_orders(category="linear", symbol="SOLUSDT", orderLinkId="breakout")["result"][
        "list"
    ][0]
    assert order["orderStatus"] == "Filled"


def test_qty_zero_with_reduce_only_and_close_on_trigger_closes_the_whole_position(session):
    market(session, "Buy", "0.030")
    market(session, "Sell", "0", reduceOnly=True, closeOnTrigger=True)
    assert position(session)["size"] == "0.000"


def test_the_record_lists_every_order_request_and_every_fill_with_the_take_profit_close(sim, session):
    market(session, "Buy", "0.020", orderLinkId="rec-1")
    session.set_trading_stop(
        category="linear", symbol="BTCUSDT", tpslMode="Full", positionIdx=0, takeProfit="98000.00"
    )
    sim.set_price("BTCUSDT", "98000.00")
    record = sim.record()
    assert [order["orderLinkId"] for order in record["orders"]] == ["rec-1"]
    fills = [(e["side"], e["qty"], e["reduceOnly"], e["stopOrderType"]) for e in record["executions"]]
    assert fills == [("Buy", "0.02", False, ""), ("Sell", "0.02", True, "TakeProfit")]
    assert record["executions"][1]["closedSize"] == "0.02"
    assert record["executions"][0]["timeMs"] <= record["executions"][1]["timeMs"] <= record["time"]
