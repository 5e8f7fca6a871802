"""Injected faults as a client sees them through pybit."""

import time

import pytest
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError

from simulator.testing import SimulatorControlError


def buy(session, link_id, qty="0.10"):
    return session.place_order(
        category="linear", symbol="ETHUSDT", side="Buy", orderType="Market", qty=qty, orderLinkId=link_id
    )


def test_an_error_fault_answers_the_ret_code_for_count_requests_then_clears(sim, session):
    sim.fault("/v5/order/create", retCode=10016, count=2)
    for link_id in ("f-1", "f-2"):
        with pytest.raises(InvalidRequestError) as caught:
            buy(session, link_id)
        assert (caught.value.status_code, caught.value.message) == (10016, "Server error.")
    buy(session, "f-3")
    orders = sim.state()["orders"]
    assert [(o["orderLinkId"], o["rejectCode"]) for o in orders] == [
        ("f-1", 10016),
        ("f-2", 10016),
        ("f-3", None),
    ]
    assert session.get_positions(category="linear", symbol="ETHUSDT")["result"]["list"][0]["size"] == "0.10"


def test_an_http_status_fault_is_a_failed_request_for_pybit(sim, session):
    sim.fault("/v5/position/list", httpStatus=502)
    with pytest.raises(FailedRequestError) as caught:
        session.get_positions(category="linear", settleCoin="USDT")
    assert caught.value.status_code == 502
    assert session.get_positions(category="linear", settleCoin="USDT")["retCode"] == 0


def test_a_latency_fault_delays_the_answer(sim, session):
    sim.fault("/v5/market/tickers", mode="latency", latencyMs=300)
    started = time.monotonic()
    session.get_tickers(category="linear", symbol="BTCUSDT")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    session.get_tickers(category="linear", symbol="BTCUSDT")
    assert time.monotonic() - started < 0.3


def test_accept_then_timeout_places_the_order_but_the_client_times_out(sim, make_session, session):
    impatient = make_session(sim, timeout=0.5)
    sim.fault("/v5/order/create", mode="accept_then_timeout")  # holds 15 s; stopping cuts it short
    with pytest.raises(requests.exceptions.ReadTimeout):
        buy(impatient, "unknown-outcome")
    # The outcome is unknown to the client; a lookup by orderLinkId finds the order.
    found = session.get_open_orders(category="linear", symbol="ETHUSDT", orderLinkId="unknown-outcome")
    assert found["result"]["list"][0]["orderStatus"] == "Filled"
    with pytest.raises(InvalidRequestError) as caught:
        buy(session, "unknown-outcome")  # retrying under the same id can't double the position
    assert caught.value.status_code == 110072


def test_a_wildcard_fault_hits_any_endpoint(sim, session):
    sim.fault("*", retCode=10000, retMsg="Server Timeout")
    with pytest.raises(InvalidRequestError) as caught:
        session.get_wallet_balance(accountType="UNIFIED")
    assert caught.value.status_code == 10000
    assert session.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "error", "retCode": 10016},
        {"endpoint": "/v5/order/create", "mode": "explode"},
        {"endpoint": "/v5/order/create", "mode": "error"},
        {"endpoint": "/v5/order/create", "mode": "latency"},
        {"endpoint": "/v5/order/create", "retCode": "10016"},
    ],
)
def test_a_bad_fault_request_is_refused_with_a_reason(sim, body):
    with pytest.raises(SimulatorControlError) as caught:
        sim._call("POST", "/sim/fault", body)
    assert "400" in str(caught.value)
    assert sim.state()["faults"] == []


def test_a_symbol_fault_refuses_that_symbols_order_alone_in_a_batch_and_in_a_single_create(sim, session):
    sim.fault("*", retCode=110017, symbol="ETHUSDT", count=2)
    orders = [
        {"symbol": symbol, "side": "Buy", "orderType": "Limit", "qty": qty, "price": price}
        for symbol, qty, price in (("BTCUSDT", "0.001", "90000.00"), ("ETHUSDT", "0.10", "3000.00"))
    ]
    answer = session.place_batch_order(category="linear", request=orders)
    assert [item["code"] for item in answer["retExtInfo"]["list"]] == [0, 110017]
    assert answer["retExtInfo"]["list"][1]["msg"] == "Reduce-only rule not satisfied"
    session.place_order(category="linear", **orders[0])  # another symbol: untouched
    with pytest.raises(InvalidRequestError) as caught:
        session.place_order(category="linear", **orders[1])
    assert caught.value.status_code == 110017
    session.place_order(category="linear", **orders[1])  # both uses spent
    refused = [o["symbol"] for o in sim.state()["orders"] if o["rejectCode"] == 110017]
    assert refused == ["ETHUSDT", "ETHUSDT"]


@pytest.mark.parametrize(("mode", "placed"), [("drop", False), ("accept_then_drop", True)])
def test_a_dropped_connection_gives_no_answer_with_or_without_the_order(sim, session, mode, placed):
    sim.fault("/v5/order/create", mode=mode)
    with pytest.raises(requests.exceptions.ConnectionError):
        buy(session, "dropped")
    found = session.get_open_orders(category="linear", symbol="ETHUSDT", orderLinkId="dropped")
    assert bool(found["result"]["list"]) is placed
    buy(session, "after")  # the next request is answered as usual


def test_a_symbol_fault_must_be_an_order_refusal(sim):
    with pytest.raises(SimulatorControlError):
        sim.fault("*", mode="latency", latencyMs=10, symbol="ETHUSDT")


def test_clearing_the_faults_drops_every_queued_one_and_the_next_order_goes_through(sim, session):
    sim.fault("/v5/order/create", retCode=110007, count=3)
    sim.fault("*", httpStatus=502, count=2)
    assert sim.faults_clear() == {"cleared": 2}
    assert sim.state()["faults"] == []
    assert buy(session, "after-clear")["retCode"] == 0
