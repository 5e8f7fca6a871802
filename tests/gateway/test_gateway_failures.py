"""Failures the gateway must classify, retry or settle, against the simulator's real faults and limits."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

import pytest

from trading.bybit import OrderRequest, OrderType
from trading.errors import (
    AuthError,
    IpBanned,
    OrderOutcomeUnknown,
    RetryableError,
)
from trading.rules import Side
from trading.rules.order_link_id import order_link_id

pytestmark = pytest.mark.integration
D = Decimal
ORDER_CREATE = "/v5/order/create"


def link(key: str) -> str:
    return order_link_id(strategy="test", symbol="BTCUSDT", decision_key=key, leg="entry")


def buy(gateway, key: str, qty: str = "0.010"):
    return gateway.place_order(
        symbol="BTCUSDT", side=Side.BUY, qty=D(qty), order_link_id=link(key), reference_price=D("97000")
    )


def received(sim, order_link_id: str) -> list[dict]:
    """Every request the venue received for this id, accepted or refused."""
    return [row for row in sim.state()["orders"] if row["orderLinkId"] == order_link_id]


# -- rate limits and server errors on reads -------------------------------------


def test_a_rate_limited_read_waits_and_succeeds(gateway, sim, caplog):
    sim.fault("/v5/position/list", retCode=10006, count=2)
    with caplog.at_level(logging.WARNING, logger="trading.bybit"):
        assert gateway.positions() == []
    assert sum("gateway_retry" in message and "code=10006" in message for message in caplog.messages) == 2
    assert sim.state()["faults"] == []  # both injected answers were consumed


def test_the_real_rate_limit_is_waited_out_for_cancels(gateway, caplog):
    # Default tier: 10 cancels a second. Twelve in a burst: the last ones wait for the window.
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="trading.bybit"):
        outcomes = [gateway.cancel_order(symbol="BTCUSDT", order_id=f"missing-{n}") for n in range(12)]
    assert outcomes == [False] * 12  # 110001: nothing to cancel, which is done
    assert any("code=10006" in message for message in caplog.messages)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("fault", "expected_code"), [({"retCode": 10016}, 10016), ({"httpStatus": 503}, 503)]
)
def test_server_errors_on_reads_are_retried(gateway, sim, fault, expected_code, caplog):
    sim.fault("/v5/account/wallet-balance", **fault)
    with caplog.at_level(logging.WARNING, logger="trading.bybit"):
        assert gateway.wallet().total_equity == D("10000")
    assert any(f"code={expected_code}" in message for message in caplog.messages)


def test_a_read_that_keeps_failing_gives_up_as_retryable(new_gateway, sim):
    gateway = new_gateway(max_attempts=3)
    sim.fault("/v5/position/list", retCode=10016, count=5)
    with pytest.raises(RetryableError) as failure:
        gateway.positions()
    assert failure.value.code == 10016
    assert sim.state()["faults"][0]["count"] == 2  # three attempts used three of the five


def test_an_ip_ban_is_not_retried(gateway, sim):
    sim.fault("/v5/position/list", httpStatus=403, count=2)
    with pytest.raises(IpBanned):
        gateway.positions()
    assert sim.state()["faults"][0]["count"] == 1


def test_a_rate_limited_order_is_refused_not_retried(gateway, sim):
    sim.fault(ORDER_CREATE, retCode=10006)
    with pytest.raises(RetryableError) as refusal:
        buy(gateway, "limited")
    assert refusal.value.code == 10006 and refusal.value.retry_at_ms is not None
    assert [row["orderStatus"] for row in received(sim, link("limited"))] == ["Rejected"]
    assert gateway.positions() == []


def test_the_budget_each_answer_names_is_read_per_endpoint_and_per_thread(gateway, sim):
    buy(gateway, "budget-1")
    status = gateway.rate_limit_status("place_order")
    assert (status.limit, status.remaining) == (10, 9)  # the default tier, one order used
    gateway.positions()
    assert gateway.rate_limit_status("get_positions").limit == 50
    assert gateway.rate_limit_status("place_order").remaining == 9  # its own endpoint's answer
    # Another thread has seen no answer of its own.
    seen = []
    thread = threading.Thread(target=lambda: seen.append(gateway.rate_limit_status("place_order")))
    thread.start()
    thread.join()
    assert seen == [None]
    for n in range(9):
        buy(gateway, f"budget-more-{n}", qty="0.001")
    with pytest.raises(RetryableError) as refusal:
        buy(gateway, "budget-over", qty="0.001")
    spent = gateway.rate_limit_status("place_order")
    assert spent.remaining == 0 and spent.reset_at_ms == refusal.value.retry_at_ms
    assert 0 < gateway.venue_seconds_until(spent.reset_at_ms) <= 1.0


# -- orders whose outcome is unknown ------------------------------------------------


def test_a_timeout_after_the_order_was_accepted_yields_exactly_one_order(new_gateway, sim, caplog):
    gateway = new_gateway(timeout=0.3)
    gateway.prepare()
    sim.fault(ORDER_CREATE, mode="accept_then_timeout", latencyMs=1500)
    with caplog.at_level(logging.INFO, logger="trading.bybit"):
        ack = buy(gateway, "held")
    assert ack.recovered and ack.order_id
    (only,) = received(sim, link("held"))
    assert only["orderId"] == ack.order_id and only["orderStatus"] == "Filled"
    assert len(sim.state()["orders"]) == 1
    assert gateway.positions()[0].size == D("0.010")
    assert any("order_outcome_unknown" in message for message in caplog.messages)


def test_a_timeout_before_the_venue_took_the_order_resends_it_once_under_the_same_id(new_gateway, sim):
    gateway = new_gateway(timeout=0.3)
    gateway.prepare()
    # The venue is slow and then fails the request: nothing placed, and we time out first.
    sim.fault(ORDER_CREATE, retCode=10016, latencyMs=800)
    ack = buy(gateway, "lost")
    assert not ack.recovered
    statuses = [row["orderStatus"] for row in received(sim, link("lost"))]
    assert statuses == ["Rejected", "Filled"]  # the lost attempt, then the resend: one position
    assert gateway.positions()[0].size == D("0.010")


def test_a_server_error_on_an_order_is_settled_by_lookup(gateway, sim):
    sim.fault(ORDER_CREATE, retCode=10000)  # "Server Timeout": refused here, but the client can't know
    ack = buy(gateway, "server-timeout")
    assert [row["orderStatus"] for row in received(sim, link("server-timeout"))] == ["Rejected", "Filled"]
    assert gateway.get_order(order_link_id=ack.order_link_id).status == "Filled"


def test_an_order_that_never_gets_an_answer_is_reported_unknown(new_gateway, sim):
    gateway = new_gateway(timeout=0.3)
    gateway.prepare()
    sim.fault(ORDER_CREATE, retCode=10016, latencyMs=600, count=2)
    with pytest.raises(OrderOutcomeUnknown) as unknown:
        buy(gateway, "silent")
    assert unknown.value.order_link_id == link("silent")
    assert [row["orderStatus"] for row in received(sim, link("silent"))] == ["Rejected", "Rejected"]


def test_a_lost_answer_to_a_limit_order_is_recovered_too(new_gateway, sim):
    gateway = new_gateway(timeout=0.3)
    gateway.prepare()
    sim.fault(ORDER_CREATE, mode="accept_then_timeout", latencyMs=1000)
    ack = gateway.place_order(
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=D("0.002"),
        order_type=OrderType.LIMIT,
        price=D("90000.00"),
        order_link_id=link("held-limit"),
    )
    assert ack.recovered
    assert [order.order_id for order in gateway.open_orders()] == [ack.order_id]


# -- authentication and clock ---------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "expected_code"),
    [({"api_secret": "not-the-secret"}, 10004), ({"api_key": "not-a-key"}, 10003)],
)
def test_a_bad_signature_or_unknown_key_is_an_auth_error(new_gateway, sim, credentials, expected_code):
    gateway = new_gateway(position_mode="one_way", **credentials)  # so the order itself goes out
    with pytest.raises(AuthError) as refused:
        gateway.wallet()
    assert refused.value.code == expected_code
    with pytest.raises(AuthError):
        buy(gateway, "unsigned")
    assert "not-the-secret" not in str(refused.value)
    assert [row["rejectCode"] for row in sim.state()["orders"]] == [expected_code]


def test_missing_keys_are_an_auth_error_before_anything_is_sent(new_gateway):
    with pytest.raises(AuthError):
        new_gateway(api_key="", api_secret="").wallet()


def test_a_clock_ahead_of_the_venue_is_resynced_and_the_call_retried_once(gateway, sim):
    gateway._clock_offset.ms = 5_000  # as if our clock ran 5 s ahead of the venue's
    assert gateway.wallet().total_equity == D("10000")
    assert abs(gateway.clock_offset_ms) < 1_000
    gateway._clock_offset.ms = 5_000
    ack = buy(gateway, "skewed")
    assert [row["rejectCode"] for row in received(sim, link("skewed"))] == [10002, None]
    assert not ack.recovered


def test_a_batch_whose_answer_was_lost_is_settled_order_by_order(new_gateway, sim):
    gateway = new_gateway(timeout=0.3)
    gateway.prepare()
    sim.fault("/v5/order/create-batch", mode="accept_then_timeout", latencyMs=1000)
    requests = [
        OrderRequest(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=D("0.002"),
            order_link_id=link(f"held-batch-{n}"),
            order_type=OrderType.LIMIT,
            price=D("90000.00") + n,
        )
        for n in range(3)
    ]
    results = gateway.place_orders_batch(orders=requests)
    assert all(result.ok and result.ack.recovered for result in results)
    assert len(sim.state()["orders"]) == 3  # nothing was sent twice
    assert {order.order_id for order in gateway.open_orders()} == {result.ack.order_id for result in results}
