"""The panic at the exchange's speed limit, against the simulator: both sides, resting and
conditional orders, a spent rate budget, a 110017 on one close, a dropped connection. Each
ends flat on the exchange, locked, with a receipt that says what happened."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from pybit.unified_trading import HTTP

from core.models import TradingState
from panic.selectors import panic_receipt_last
from panic.services import panic_text, panic_trigger
from tests.support.sim import make_sim_gateway, open_orders_on_exchange
from trading.bybit import OrderType
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PHASES = {"lock", "cancel", "closes", "verification", "total"}


def raw_session(sim) -> HTTP:
    """pybit itself, for what the gateway does not place (a bare conditional order, a mode switch)."""
    session = HTTP(api_key=sim.api_key, api_secret=sim.api_secret, retry_codes={0})
    session.endpoint = sim.base_url
    return session


def closes_on_exchange(sim, symbol: str | None = None) -> list[dict]:
    return [
        o
        for o in sim.state()["orders"]
        if o["reduceOnly"] and o["orderType"] == "Market" and (symbol is None or o["symbol"] == symbol)
    ]


def assert_flat_and_locked(sim, result) -> None:
    assert result.flat and result.verified
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    assert TradingState.load().panic_locked
    assert set(result.timings_ms) == PHASES and all(ms >= 0 for ms in result.timings_ms.values())


@pytest.fixture
def hedge_account(sim):
    session = raw_session(sim)
    session.switch_position_mode(category="linear", coin="USDT", mode=3)
    yield make_sim_gateway(sim)
    sim.reset()  # a fresh account is in one-way mode again


def test_both_sides_of_a_hedge_account_and_every_kind_of_order_end_flat_with_a_receipt(
    sim, panic_settings, hedge_account
):
    gateway = hedge_account
    for symbol, side, qty, price in (
        ("BTCUSDT", Side.BUY, "0.010", "97000"),  # 970 USDT
        ("BTCUSDT", Side.SELL, "0.005", "97000"),  # 485 USDT, the other side of the same symbol
        ("ETHUSDT", Side.BUY, "0.50", "3300"),  # 1,650 USDT: the largest, closed first
    ):
        gateway.place_order(
            symbol=symbol,
            side=side,
            qty=Decimal(qty),
            order_link_id=f"t-{symbol}-{side}",
            reference_price=Decimal(price),
        )
    gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.SELL, stop_loss=Decimal("99000.00"))
    gateway.place_order(
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("1.0"),
        order_link_id="t-resting",
        order_type=OrderType.LIMIT,
        price=Decimal("150.000"),
    )
    raw_session(sim).place_order(  # a bare conditional order: cancel-all without a filter takes it too
        category="linear",
        symbol="SOLUSDT",
        side="Buy",
        orderType="Market",
        qty="1.0",
        triggerPrice="200.000",
        triggerDirection=1,
        positionIdx=1,
        orderLinkId="t-conditional",
    )
    assert len(gateway.open_orders()) == 3  # the stop-loss, the resting limit, the conditional order

    result = panic_trigger(by="test", reason="drill")

    assert_flat_and_locked(sim, result)
    assert result.rounds == 1 and result.cancelled_orders == 3
    assert {"t-resting", "t-conditional"} <= set(result.cancelled)
    assert [(c["symbol"], c["side"], c["qty"], c["position_idx"]) for c in result.closes] == [
        ("ETHUSDT", "Sell", "0.50", 1),
        ("BTCUSDT", "Sell", "0.010", 1),
        ("BTCUSDT", "Buy", "0.005", 2),
    ]
    # Price and realised PnL as the exchange reported them, per close.
    for close in result.closes:
        assert Decimal(close["avg_price"]) > 0 and close["realised_pnl"] is not None and close["order_id"]
    sent = {(o["symbol"], o["side"], o["positionIdx"], Decimal(o["qty"])) for o in closes_on_exchange(sim)}
    assert sent == {
        ("ETHUSDT", "Sell", 1, Decimal("0.50")),
        ("BTCUSDT", "Sell", 1, Decimal("0.010")),
        ("BTCUSDT", "Buy", 2, Decimal("0.005")),
    }
    # Journaled: the dashboard's receipt is the same, and the alert text carries it.
    receipt = panic_receipt_last()
    assert receipt["closes"] == result.closes and set(receipt["timings_ms"]) == PHASES
    assert Decision.objects.get(action="panic").details["cancelled_orders"] == 3
    text = panic_text(result)
    assert "ETHUSDT Sell 0.50 @ " in text and "1 round; lock " in text


def test_a_spent_rate_budget_is_waited_out_until_the_reset_the_exchange_names(sim, panic_settings, open_book):
    # Spend this second's budgets of both order endpoints (default tier: 10 each), so the
    # panic's first closes are answered 10006.
    session = raw_session(sim)
    resting = [
        {"symbol": "SOLUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.1", "price": "100.000"}
        for _ in range(10)
    ]
    batch = [dict(order, orderLinkId=f"t-batch-{n}") for n, order in enumerate(resting)]
    session.place_batch_order(category="linear", request=batch)
    spent_at = time.time()
    for n in range(10):
        try:
            session.place_order(category="linear", orderLinkId=f"t-single-{n}", **resting[n])
        except Exception:  # 10006 once the budget is gone (open_book used some of it)
            break

    result = panic_trigger(by="test")

    assert_flat_and_locked(sim, result)
    assert result.rate_limited >= 2 and result.rounds == 1
    refused = [o for o in closes_on_exchange(sim) if o["rejectCode"] == 10006]
    accepted = [o for o in closes_on_exchange(sim) if not o["rejectCode"]]
    assert refused and len(accepted) == 2
    # Sent again once the window named had rolled (a rolling second), not after a fixed pause.
    arrived = [o["receivedNs"] / 1e9 - spent_at for o in accepted]
    assert 0.9 <= min(arrived) and max(arrived) < 2.0  # 2 s: slack for a loaded machine


def test_10006_on_the_first_calls_of_every_kind_still_ends_flat(sim, panic_settings, open_book):
    sim.fault("*", retCode=10006, count=4)  # the cancel-all, the reads: answered "too many visits"

    result = panic_trigger(by="test")

    assert_flat_and_locked(sim, result)
    assert result.cancelled_orders == 5 and sorted(result.closed) == ["BTCUSDT", "ETHUSDT"]


def test_a_110017_on_one_close_rereads_that_symbol_and_closes_it_in_the_same_round(
    sim, panic_settings, open_book
):
    sim.fault("*", retCode=110017, count=1, symbol="ETHUSDT")

    result = panic_trigger(by="test")

    assert_flat_and_locked(sim, result)
    assert result.rounds == 1 and result.errors == []
    eth = closes_on_exchange(sim, "ETHUSDT")
    assert [o["rejectCode"] for o in eth] == [110017, None]
    assert eth[0]["orderLinkId"] != eth[1]["orderLinkId"]  # the re-read close has an id of its own
    assert [(c["symbol"], c["qty"]) for c in result.closes] == [("ETHUSDT", "0.50"), ("BTCUSDT", "0.010")]
    assert result.closes[0]["order_link_id"] == eth[1]["orderLinkId"]


@pytest.mark.parametrize(
    ("endpoint", "mode"),
    [
        ("/v5/order/create-batch", "accept_then_drop"),  # the closes were placed, the answer never came
        ("/v5/order/create-batch", "drop"),  # nothing was placed
        ("/v5/position/list", "drop"),  # the first read: read again
    ],
)
def test_a_dropped_connection_is_settled_and_nothing_is_sent_twice(
    sim, panic_settings, open_book, endpoint, mode
):
    sim.fault(endpoint, mode=mode, count=1)

    result = panic_trigger(by="test")

    assert_flat_and_locked(sim, result)
    assert result.rounds == 1 and sorted(result.closed) == ["BTCUSDT", "ETHUSDT"]
    placed = [o for o in closes_on_exchange(sim) if not o["rejectCode"]]
    assert len(placed) == 2  # never twice: the lookup by orderLinkId found or resent each one
    assert {c["order_link_id"] for c in result.closes} == {o["orderLinkId"] for o in placed}
