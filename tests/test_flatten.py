"""positions_flatten against the simulator: orders cancelled, positions closed reduce-only, verified."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.book import open_book
from trading.flatten import positions_flatten
from trading.models import Decision

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
