"""The simulator's trailing stop (``trading-stop`` with ``trailingStop``/``activePrice``): shown on
the position, moved by the price clock, fired as a reduce-only close of the whole position."""

from __future__ import annotations

from decimal import Decimal

from tests.sim.test_orders import market, position, refusal


def stop_orders(session, symbol="BTCUSDT") -> list[dict]:
    return session.get_open_orders(category="linear", symbol=symbol, orderFilter="StopOrder")["result"][
        "list"
    ]


def trailing(session, symbol="BTCUSDT", **params):
    return session.set_trading_stop(
        category="linear", symbol=symbol, tpslMode="Full", positionIdx=0, **params
    )


def test_a_long_trailing_stop_follows_the_best_price_and_closes_the_whole_position(
    sim, session, private_ws, inbox, subscribed
):
    positions = inbox()
    private_ws().position_stream(positions)
    subscribed(sim, "position")
    market(session, "Buy", "0.020")
    trailing(session, trailingStop="1000.00")
    assert position(session)["trailingStop"] == "1000.00"
    assert positions.wait_for(lambda m: m["data"][0]["trailingStop"] == "1000.00")
    (leg,) = stop_orders(session)
    assert (leg["stopOrderType"], leg["createType"], leg["side"], leg["orderStatus"]) == (
        "TrailingStop",
        "CreateByTrailingStop",
        "Sell",
        "Untriggered",
    )
    assert (leg["triggerPrice"], leg["triggerDirection"], leg["reduceOnly"], leg["qty"]) == (
        "96000.00",  # 97000 less 1000: it trails from the last price at once
        2,
        True,
        "0.000",  # it follows the position's size, as a Full-mode TP/SL does
    )
    market(session, "Buy", "0.010")  # it follows the size
    sim.set_price("BTCUSDT", "99000.00")
    assert stop_orders(session)[0]["triggerPrice"] == "98000.00"
    sim.set_price("BTCUSDT", "98500.00")  # it never moves back
    assert stop_orders(session)[0]["triggerPrice"] == "98000.00"
    assert position(session)["size"] == "0.030"

    sim.set_price("BTCUSDT", "97990.00")

    row = position(session)
    assert (row["size"], row["side"], row["trailingStop"]) == ("0.000", "", "0")
    assert stop_orders(session) == []
    fired = next(
        o
        for o in session.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]
        if o["stopOrderType"] == "TrailingStop"
    )
    assert (fired["orderStatus"], fired["cumExecQty"], fired["side"]) == ("Filled", "0.030", "Sell")
    closed = session.get_closed_pnl(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert closed["orderId"] == fired["orderId"] and Decimal(closed["avgExitPrice"]) < Decimal("97990")


def test_an_active_price_holds_the_stop_back_until_the_price_reaches_it(sim, session):
    market(session, "Buy", "0.010")
    trailing(session, trailingStop="500.00", activePrice="98000.00")
    sim.set_price("BTCUSDT", "96000.00")  # below 98000 - 500, but not yet active
    assert position(session)["size"] == "0.010"
    sim.set_price("BTCUSDT", "98200.00")
    assert stop_orders(session)[0]["triggerPrice"] == "97700.00"
    sim.set_price("BTCUSDT", "97700.00")
    assert position(session)["size"] == "0.000"


def test_a_short_trailing_stop_fires_on_a_rise_from_the_lowest_price(sim, session):
    market(session, "Sell", "1.00", symbol="ETHUSDT")
    trailing(session, symbol="ETHUSDT", trailingStop="50.00")
    sim.set_price("ETHUSDT", "3200.00")
    assert stop_orders(session, "ETHUSDT")[0]["triggerPrice"] == "3250.00"
    sim.set_price("ETHUSDT", "3249.99")
    assert position(session, "ETHUSDT")["size"] == "1.00"
    sim.set_price("ETHUSDT", "3250.00")
    assert position(session, "ETHUSDT")["size"] == "0.00"


def test_take_profit_and_stop_loss_calls_leave_the_trailing_stop_alone(sim, session):
    market(session, "Buy", "0.010")
    trailing(session, trailingStop="1000.00")
    trailing(session, takeProfit="99000.00", stopLoss="95000.00")
    row = position(session)
    assert (row["takeProfit"], row["stopLoss"], row["trailingStop"]) == ("99000.00", "95000.00", "1000.00")
    assert sorted(o["stopOrderType"] for o in stop_orders(session)) == [
        "StopLoss",
        "TakeProfit",
        "TrailingStop",
    ]
    trailing(session, trailingStop="0")  # 0 cancels it, and only it
    row = position(session)
    assert (row["takeProfit"], row["trailingStop"]) == ("99000.00", "0")
    assert sorted(o["stopOrderType"] for o in stop_orders(session)) == ["StopLoss", "TakeProfit"]


def test_trailing_stop_rules(sim, session):
    market(session, "Buy", "0.010")
    trailing(session, trailingStop="1000.00")

    def refused(**params):
        return refusal(lambda **p: trailing(session, **p), **params)

    assert refused(trailingStop="1000.00").status_code == 34040  # already so
    problem = refused(trailingStop="1000.05")
    assert problem.status_code == 10001 and "tickSize" in problem.message
    problem = refused(trailingStop="500.00", activePrice="96000.00")
    assert problem.status_code == 10001 and "ActivePrice" in problem.message
    trailing(session, trailingStop="2000.00")  # a new distance replaces the stop
    (leg,) = stop_orders(session)
    assert leg["triggerPrice"] == "95000.00"
