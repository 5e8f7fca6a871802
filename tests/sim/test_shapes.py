"""Every answer carries every key path of Bybit's documented example, with the same JSON type.

The examples are Bybit's own (tests/resources/bybit/, see tests/resources/README.md); the client
is the real pybit, pointed at the simulator.
"""


def test_market_answers_match_bybits_examples(session, rest_shape):
    rest_shape(session.get_server_time(), "market_time")
    rest_shape(session.get_instruments_info(category="linear"), "market_instruments_info_linear")
    rest_shape(session.get_tickers(category="linear", symbol="BTCUSDT"), "market_tickers_linear")
    rest_shape(session.get_kline(category="linear", symbol="BTCUSDT", interval="1"), "market_kline")
    rest_shape(session.get_public_trade_history(category="linear", symbol="BTCUSDT"), "market_recent_trade")


def test_trading_answers_match_bybits_examples(sim, session, rest_shape):
    rest_shape(
        session.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="5", sellLeverage="5"),
        "position_set_leverage",
    )
    rest_shape(
        session.place_order(
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Market",
            qty="0.010",
            orderLinkId="shape-open",
        ),
        "order_create",
    )
    rest_shape(
        session.set_trading_stop(
            category="linear",
            symbol="BTCUSDT",
            tpslMode="Full",
            positionIdx=0,
            takeProfit="99000",
            stopLoss="95000",
        ),
        "position_trading_stop",
    )
    rest_shape(
        session.place_order(
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.010",
            price="90000",
            orderLinkId="shape-rest",
        ),
        "order_create",
    )
    rest_shape(session.get_open_orders(category="linear", symbol="BTCUSDT"), "order_realtime")
    rest_shape(session.get_order_history(category="linear", symbol="BTCUSDT"), "order_history")
    rest_shape(session.get_positions(category="linear", settleCoin="USDT"), "position_list")
    rest_shape(session.get_positions(category="linear", symbol="ETHUSDT"), "position_list")
    rest_shape(session.get_wallet_balance(accountType="UNIFIED"), "account_wallet_balance_unified")
    rest_shape(session.get_executions(category="linear"), "execution_list")
    rest_shape(
        session.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="shape-rest"), "order_cancel"
    )
    rest_shape(
        session.place_batch_order(
            category="linear",
            request=[
                {"symbol": "ETHUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.10", "price": "3000.00"},
                {"symbol": "SOLUSDT", "side": "Buy", "orderType": "Limit", "qty": "1.0", "price": "150.000"},
            ],
        ),
        "order_create_batch",
    )
    rest_shape(
        session.cancel_all_orders(category="linear", settleCoin="USDT", orderFilter="Order"),
        "order_cancel_all",
    )
    session.place_order(
        category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.010", reduceOnly=True
    )
    rest_shape(session.get_closed_pnl(category="linear"), "position_closed_pnl")
    sim.configure(dcp_enabled=True)  # an account Bybit enabled DCP for
    rest_shape(session.set_dcp(product="DERIVATIVES", timeWindow=10), "order_disconnected_cancel_all")


def test_stream_messages_match_bybits_examples(
    sim, session, public_ws, private_ws, inbox, ws_shape, subscribed
):
    public = public_ws()
    tickers, liquidations = inbox(), inbox()
    public.ticker_stream("BTCUSDT", tickers)
    public.all_liquidation_stream("BTCUSDT", liquidations)
    private = private_ws()
    orders, positions, executions, wallets = inbox(), inbox(), inbox(), inbox()
    private.order_stream(orders)
    private.position_stream(positions)
    private.execution_stream(executions)
    private.wallet_stream(wallets)
    subscribed(sim, "order", "position", "execution", "wallet", "allLiquidation.BTCUSDT")
    tickers.wait_for(lambda m: m["type"] == "snapshot")
    # pybit hands tickers to callbacks as a merged snapshot; check the raw first message's keys.
    ws_shape(tickers.messages[0], "ws_tickers")

    session.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010")
    sim.liquidation("BTCUSDT", "SELL", "96000", "0.250")
    ws_shape(orders.wait_for(lambda m: m["data"][0]["orderStatus"] == "Filled"), "ws_order")
    ws_shape(positions.wait_for(lambda m: m["data"][0]["size"] == "0.010"), "ws_position")
    ws_shape(executions.wait_for(lambda m: True), "ws_execution")
    ws_shape(wallets.wait_for(lambda m: True), "ws_wallet")
    ws_shape(liquidations.wait_for(lambda m: True, timeout=3), "ws_allLiquidation")


def test_the_api_key_answer_matches_bybits_example(session, rest_shape):
    rest_shape(session.get_api_key_information(), "user_query_api")
