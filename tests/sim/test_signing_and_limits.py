"""Signed requests checked as Bybit checks them, and Bybit's default-tier rate limits."""

import hashlib
import hmac
import json
import time

import pytest
import requests
from pybit.exceptions import InvalidRequestError

from simulator.testing import SimulatorControlError, running_simulator


def signed_headers(sim, payload: str, *, key=None, secret=None, timestamp=None, recv_window="5000"):
    key = key or sim.api_key
    timestamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
    message = timestamp + key + recv_window + payload
    sign = hmac.new((secret or sim.api_secret).encode(), message.encode(), hashlib.sha256).hexdigest()
    return {
        "X-BAPI-API-KEY": key,
        "X-BAPI-TIMESTAMP": timestamp,
        "X-BAPI-RECV-WINDOW": recv_window,
        "X-BAPI-SIGN": sign,
        "Content-Type": "application/json",
    }


def post(sim, path, body: str, **options):
    return requests.post(
        sim.base_url + path, data=body.encode(), headers=signed_headers(sim, body, **options), timeout=5
    ).json()


def get(sim, path, query: str, **options):
    return requests.get(
        f"{sim.base_url}{path}?{query}", headers=signed_headers(sim, query, **options), timeout=5
    ).json()


def test_the_signature_covers_the_raw_body_as_sent(sim):
    # Unsorted keys and extra whitespace: only a server that signs the raw bytes accepts it.
    body = '{"symbol": "BTCUSDT",  "side":"Buy", "category":"linear", "orderType":"Market", "qty":"0.001"}'
    assert post(sim, "/v5/order/create", body)["retCode"] == 0
    assert get(sim, "/v5/position/list", "symbol=BTCUSDT&category=linear")["retCode"] == 0


def test_an_unknown_api_key_is_10003(sim, make_session):
    assert (
        post(sim, "/v5/order/cancel-all", '{"category":"linear","settleCoin":"USDT"}', key="not-a-key")[
            "retCode"
        ]
        == 10003
    )
    with pytest.raises(InvalidRequestError) as caught:
        make_session(sim, api_key="not-a-key").get_wallet_balance(accountType="UNIFIED")
    assert caught.value.status_code == 10003


def test_a_wrong_signature_is_10004(sim, make_session):
    assert (
        get(sim, "/v5/position/list", "category=linear&settleCoin=USDT", secret="wrong")["retCode"] == 10004
    )
    with pytest.raises(InvalidRequestError) as caught:
        make_session(sim, api_secret="wrong-secret").place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001"
        )
    assert caught.value.status_code == 10004
    refused = sim.state()["orders"][-1]
    assert (refused["rejectCode"], refused["orderStatus"]) == (10004, "Rejected")


@pytest.mark.parametrize(
    "shift_ms, ret_code",
    [
        (-6000, 10002),  # older than recv_window
        (-4000, 0),
        (500, 0),
        (1500, 10002),  # a client clock ahead by >= 1 s fails whatever the recv_window
    ],
)
def test_the_timestamp_must_lie_within_the_receive_window(sim, shift_ms, ret_code):
    stamp = int(time.time() * 1000) + shift_ms
    answer = get(sim, "/v5/account/wallet-balance", "accountType=UNIFIED", timestamp=stamp)
    assert answer["retCode"] == ret_code


def test_the_eleventh_order_request_in_a_second_is_10006_with_bybits_headers(sim, make_session):
    session = make_session(sim)
    for _ in range(10):
        with pytest.raises(InvalidRequestError) as caught:
            session.cancel_order(category="linear", symbol="BTCUSDT", orderId="unknown")
        assert caught.value.status_code == 110001
    with pytest.raises(InvalidRequestError) as caught:
        session.cancel_order(category="linear", symbol="BTCUSDT", orderId="unknown")
    assert (caught.value.status_code, caught.value.message) == (10006, "Too many visits!")
    headers = caught.value.resp_headers
    assert headers["X-Bapi-Limit"] == "10" and headers["X-Bapi-Limit-Status"] == "0"
    assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) > int(time.time() * 1000) - 50
    # Each endpoint has its own budget; reads have 50 per second.
    answer, _, read_headers = make_session(sim, return_response_headers=True).get_positions(
        category="linear", settleCoin="USDT"
    )
    assert answer["retCode"] == 0
    assert (read_headers["X-Bapi-Limit"], read_headers["X-Bapi-Limit-Status"]) == ("50", "49")


def test_pybit_waits_for_the_reset_timestamp_and_retries(sim, make_session):
    session = make_session(sim, retry_codes=None)  # pybit's defaults: 10006 sleeps, then retries
    for _ in range(10):
        session.place_order(
            category="linear", symbol="ETHUSDT", side="Buy", orderType="Limit", qty="0.10", price="3000.00"
        )
    started = time.monotonic()
    session.place_order(
        category="linear",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.10",
        price="3000.00",
        orderLinkId="after-wait",
    )
    assert time.monotonic() - started < 1.5
    assert sum(1 for o in sim.state()["orders"] if o["rejectCode"] == 10006) == 1


def test_a_batch_counts_each_order_and_the_excess_fails_alone(sim, session):
    orders = [
        {"symbol": "ETHUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.10", "price": "3000.00"}
    ] * 14
    answer = session.place_batch_order(category="linear", request=orders)
    codes = [item["code"] for item in answer["retExtInfo"]["list"]]
    assert answer["retCode"] == 0 and codes == [0] * 10 + [10006] * 4


def test_a_higher_tier_allows_more_orders_per_second(make_session):
    with running_simulator(rate_tier="pro1") as sim:
        session = make_session(sim, return_response_headers=True)
        for _ in range(30):
            session.place_order(
                category="linear",
                symbol="ETHUSDT",
                side="Buy",
                orderType="Limit",
                qty="0.10",
                price="3000.00",
            )
        _, _, headers = session.get_open_orders(category="linear", symbol="ETHUSDT")
        assert headers["X-Bapi-Limit"] == "200"


def test_the_private_ws_auth_is_checked(sim):
    import websocket

    connection = websocket.create_connection(sim.private_ws_url, timeout=5)
    try:
        expires = int(time.time() * 1000) + 5000
        connection.send(json.dumps({"op": "auth", "args": [sim.api_key, expires, "00" * 32]}))
        answer = json.loads(connection.recv())
        assert (answer["op"], answer["success"]) == ("auth", False)
        connection.send(json.dumps({"op": "subscribe", "req_id": "r1", "args": ["order"]}))
        assert json.loads(connection.recv())["success"] is False
        sign = hmac.new(
            sim.api_secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
        ).hexdigest()
        connection.send(json.dumps({"op": "auth", "args": [sim.api_key, expires, sign]}))
        assert json.loads(connection.recv())["success"] is True
        connection.send(json.dumps({"op": "subscribe", "req_id": "r2", "args": ["order", "dcp.future"]}))
        answer = json.loads(connection.recv())
        assert (answer["success"], answer["req_id"], answer["op"]) == (True, "r2", "subscribe")
        connection.send(json.dumps({"op": "ping", "req_id": "p1"}))
        pong = json.loads(connection.recv())
        assert pong["op"] == "pong" and pong["req_id"] == "p1"
    finally:
        connection.close()


def test_the_rate_tier_an_added_latency_and_dcp_change_while_running_and_a_reset_restores_them(
    sim, make_session
):
    session = make_session(sim, return_response_headers=True)
    assert sim.configure(rate_tier="pro1", latency_ms=40, dcp_enabled=True) == {
        "rateTier": "pro1",
        "latencyMs": 40,
        "dcpEnabled": True,
    }
    started = time.monotonic()
    _, _, headers = session.cancel_all_orders(category="linear", settleCoin="USDT")
    assert time.monotonic() - started >= 0.04
    assert headers["X-Bapi-Limit"] == "200" and sim.state()["settings"]["latencyMs"] == 40
    with pytest.raises(SimulatorControlError):
        sim.configure(rate_tier="platinum")
    sim.reset()
    _, _, headers = session.cancel_all_orders(category="linear", settleCoin="USDT")
    assert headers["X-Bapi-Limit"] == "10"
    assert sim.state()["settings"] == {"rateTier": "default", "latencyMs": 0, "dcpEnabled": False}
