"""positions_flatten against the simulator: orders cancelled, positions closed reduce-only, verified."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.support.book import open_book
from tests.support.sim import make_sim_gateway
from trading.bybit import OrderRequest
from trading.flatten import positions_flatten
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_everything_is_cancelled_and_closed_on_the_right_side_and_journaled(sim, gateway):
    open_book(gateway, with_tpsl=False)
    report = positions_flatten(gateway=gateway, strategy="panic", run_key="run-1", pause_s=0)
    assert report.flat and report.rounds == 1 and report.cancelled_orders == 1
    assert sorted(report.closes_sent) == ["BTCUSDT", "ETHUSDT"]
    assert sim.state()["positions"] == [] and gateway.open_orders() == []
    closes = [o for o in sim.state()["orders"] if o["reduceOnly"]]
    assert {(o["symbol"], o["side"], Decimal(o["qty"])) for o in closes} == {
        ("BTCUSDT", "Sell", Decimal("0.010")),
        ("ETHUSDT", "Buy", Decimal("0.50")),
    }
    assert all(o["orderLinkId"].startswith("panic-close-") for o in closes)
    journal = Decision.objects.get(action="flatten")
    assert (journal.strategy, journal.outcome, journal.reason_code) == ("panic", "taken", "flat")


def test_an_unreadable_account_is_never_reported_flat(sim, gateway):
    open_book(gateway, with_tpsl=False)
    sim.fault("/v5/position/list", mode="error", httpStatus=500, count=100)
    report = positions_flatten(gateway=gateway, strategy="panic", run_key="run-2", max_rounds=2, pause_s=0)
    assert not report.flat and not report.verified
    assert Decision.objects.get(action="flatten").reason_code == "not_flat"


def test_a_read_failure_is_retried_in_the_next_round(sim, gateway):
    open_book(gateway, with_tpsl=False)
    sim.fault("/v5/position/list", mode="error", retCode=10016, count=4)
    report = positions_flatten(gateway=gateway, strategy="risk", run_key="run-3", pause_s=0)
    assert report.flat and report.rounds >= 1
    assert sim.state()["positions"] == []


def test_only_the_given_symbols_are_flattened(sim, gateway):
    open_book(gateway, with_tpsl=False)
    report = positions_flatten(
        gateway=gateway, strategy="risk", run_key="run-4", symbols=["BTCUSDT"], pause_s=0
    )
    assert report.flat and report.closes_sent == ["BTCUSDT"]
    assert [p["symbol"] for p in sim.state()["positions"]] == ["ETHUSDT"]
    assert [o.symbol for o in gateway.open_orders()] == ["SOLUSDT"]


def test_a_second_flatten_of_a_flat_account_sends_nothing(sim, gateway):
    open_book(gateway, with_tpsl=False)
    positions_flatten(gateway=gateway, strategy="panic", run_key="run-5", pause_s=0)
    sent_before = len(sim.state()["orders"])
    report = positions_flatten(gateway=gateway, strategy="panic", run_key="run-5", pause_s=0)
    assert report.flat and report.closes_sent == [] and len(sim.state()["orders"]) == sent_before


KLINE_ROW = "{open_ms},{price},{price},{price},{price},1000.0,{close_ms},0,1,0,0,0\n"


@pytest.fixture
def thirty_symbol_sim(tmp_path):
    """A simulator (Bybit's default rate tier) listing 30 symbols, S00USDT at 10.00 to S29USDT at 39.00."""
    from simulator.testing import running_simulator

    (tmp_path / "klines").mkdir()
    open_ms = int(time.time() // 60 * 60_000)
    for index in range(30):
        row = KLINE_ROW.format(open_ms=open_ms, close_ms=open_ms + 59_999, price=f"{10 + index}.00")
        (tmp_path / "klines" / f"S{index:02d}USDT.csv").write_text(row)
    with running_simulator(data_dir=tmp_path, replay_autostart=False, equity="10000000") as sim:
        yield sim


def test_closes_use_both_order_budgets_at_their_limit_biggest_exposure_first(thirty_symbol_sim):
    sim = thirty_symbol_sim
    gateway = make_sim_gateway(sim)
    sim.configure(rate_tier="off")  # build the book at once
    book = []
    for index in range(30):
        price = Decimal(10 + index)
        qty = (Decimal(100 * (index + 1)) / price).quantize(Decimal("0.1"))  # 100 x (index + 1) USDT
        side = Side.BUY if index % 2 else Side.SELL
        book.append(OrderRequest(f"S{index:02d}USDT", side, qty, f"t-{index}", reference_price=price))
    assert all(result.ok for result in gateway.place_orders_batch(orders=book))
    sim.configure(rate_tier="default")  # 10 single + 10 batch orders a second, a fresh window

    report = positions_flatten(gateway=gateway, strategy="panic", run_key="run-30", pause_s=0)

    assert report.flat and report.rounds == 1 and len(report.closes) == 30
    closes = sorted(
        (o for o in sim.state()["orders"] if o["reduceOnly"]), key=lambda order: order["receivedNs"]
    )
    # Sized to the budgets the answers named: no close refused with 10006 (two at most, when a
    # loaded machine's clock estimate puts a wave a hair before the reset; they are retried).
    refused = [o for o in closes if o["rejectCode"] == 10006]
    assert len(refused) <= 2 and report.rate_limited <= 2
    assert [o["rejectCode"] for o in closes if o not in refused] == [None] * (len(closes) - len(refused))
    closes = [o for o in closes if o not in refused]
    # The 20 largest went out at once (both budgets), the other 10 once the window rolled.
    first, second = closes[:20], closes[20:]
    assert {o["symbol"] for o in first} == {f"S{index:02d}USDT" for index in range(10, 30)}
    assert (first[-1]["receivedNs"] - first[0]["receivedNs"]) / 1e9 < 0.5
    assert 0.9 < (second[0]["receivedNs"] - first[0]["receivedNs"]) / 1e9 < 2.0  # slack for a loaded machine
    # The receipt lists them largest first.
    assert [close.symbol for close in report.closes][:3] == ["S29USDT", "S28USDT", "S27USDT"]
