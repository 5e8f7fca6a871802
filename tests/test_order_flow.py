"""order_send against the simulator: a filled order, refusals, and an answer lost on the way back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest

from trading.bybit import BybitGateway
from trading.errors import GatewayError, InsufficientBalance, OrderOutcomeUnknown, UnknownInstrument
from trading.models import Decision
from trading.order_flow import OrderJournal, OrderStatus, order_send
from trading.rules import Side
from trading.rules.order_link_id import order_link_id
from trading.services import decision_record

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
ORDER_CREATE = "/v5/order/create"
LINK = order_link_id(strategy="manual", symbol="BTCUSDT", decision_key="order-flow", leg="entry")


def journal_write(*, action, outcome, reason_code, now, symbol="", details=None, order_link_id=""):
    decision_record(
        strategy=Decision.Strategy.MANUAL,
        action=action,
        outcome=outcome,
        symbol=symbol,
        reason_code=reason_code,
        details=details,
        order_link_id=order_link_id,
        at=now,
    )


def error_details(error: GatewayError) -> dict:
    return {"code": error.code, "message": error.message}


JOURNAL = OrderJournal(write=journal_write, error_details=error_details)


def buy(gateway: BybitGateway):
    """The placement: a 0.010 BTCUSDT market buy under LINK."""
    return partial(
        gateway.place_order,
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal("0.010"),
        order_link_id=LINK,
        reference_price=Decimal("97000"),
    )


def send(place, **options):
    return order_send(
        journal=JOURNAL,
        action="enter",
        symbol="BTCUSDT",
        order_link_id=LINK,
        place=place,
        details={"qty": "0.010"},
        now=NOW,
        **options,
    )


def received(sim) -> list[dict]:
    """Every request the venue received under LINK, accepted or refused."""
    return [row for row in sim.state()["orders"] if row["orderLinkId"] == LINK]


def journal() -> list[tuple]:
    return list(
        Decision.objects.order_by("id").values_list(
            "action", "outcome", "reason_code", "order_link_id", "details"
        )
    )


def short_timeout_gateway(sim) -> BybitGateway:
    gateway = BybitGateway(
        mode="sim", api_key=sim.api_key, api_secret=sim.api_secret, base_url=sim.base_url, timeout=0.3
    )
    gateway.prepare()
    return gateway


def test_a_filled_order_is_placed_and_journaled_as_taken(sim, gateway):
    outcome = send(buy(gateway), taken_reason="test_entry")

    assert outcome.status is OrderStatus.PLACED and outcome.error is None
    assert outcome.ack.order_link_id == LINK and not outcome.ack.recovered
    assert [row["orderStatus"] for row in received(sim)] == ["Filled"]
    assert gateway.positions()[0].size == Decimal("0.010")
    assert journal() == [("enter", "taken", "test_entry", LINK, {"qty": "0.010"})]


def test_without_a_taken_reason_a_placed_order_is_left_for_the_caller_to_journal(sim, gateway):
    outcome = send(buy(gateway))

    assert outcome.status is OrderStatus.PLACED
    assert journal() == []


def test_an_order_the_exchange_refuses_is_journaled_as_failed_under_the_error_class(sim, gateway):
    sim.fault(ORDER_CREATE, mode="error", retCode=110007, count=1, retMsg="ab not enough for new order")

    outcome = send(buy(gateway), taken_reason="test_entry")

    assert outcome.status is OrderStatus.REFUSED and isinstance(outcome.error, InsufficientBalance)
    assert [row["orderStatus"] for row in received(sim)] == ["Rejected"]  # sent once, never again
    assert gateway.positions() == []
    assert journal() == [
        (
            "enter",
            "failed",
            "InsufficientBalance",
            LINK,
            {"qty": "0.010", "code": 110007, "message": "ab not enough for new order"},
        )
    ]


def test_a_refusal_the_caller_throttles_is_not_journaled(sim, gateway):
    sim.fault(ORDER_CREATE, mode="error", retCode=10001, count=1)
    asked = []

    def never_due(error: GatewayError) -> bool:
        asked.append(type(error))
        return False

    outcome = send(buy(gateway), refusal_journal_due=never_due)

    assert outcome.status is OrderStatus.REFUSED
    assert asked == [type(outcome.error)] and outcome.error.code == 10001
    assert journal() == []


def test_a_read_the_placement_needs_failing_is_a_refusal_and_nothing_is_sent(sim, gateway):
    details = {"qty": "0.010"}

    def place():
        details["step"] = str(gateway.instrument("NOSUCHUSDT").qty_step)
        return buy(gateway)()

    outcome = order_send(
        journal=JOURNAL,
        action="enter",
        symbol="NOSUCHUSDT",
        order_link_id=LINK,
        place=place,
        details=details,
        now=NOW,
    )

    assert outcome.status is OrderStatus.REFUSED and isinstance(outcome.error, UnknownInstrument)
    assert sim.state()["orders"] == []
    [(action, outcome_word, reason_code, link, row_details)] = journal()
    assert (action, outcome_word, reason_code, link) == ("enter", "failed", "UnknownInstrument", LINK)
    assert row_details == {"qty": "0.010", "code": None, "message": "unknown instrument NOSUCHUSDT"}


def test_what_the_placement_adds_to_the_details_is_journaled(sim, gateway):
    details = {"qty": "0.010"}

    def place():
        details["whole_position"] = False
        return buy(gateway)()

    order_send(
        journal=JOURNAL,
        action="enter",
        symbol="BTCUSDT",
        order_link_id=LINK,
        place=place,
        details=details,
        now=NOW,
        taken_reason="test_entry",
    )

    assert journal()[0][4] == {"qty": "0.010", "whole_position": False}


def test_a_placement_that_returns_none_is_skipped_without_a_row(sim, gateway):
    outcome = send(lambda: None, taken_reason="test_entry")

    assert outcome.status is OrderStatus.SKIPPED and outcome.ack is None and outcome.error is None
    assert sim.state()["orders"] == [] and journal() == []


def test_an_answer_lost_after_the_venue_took_the_order_is_settled_by_lookup(sim):
    gateway = short_timeout_gateway(sim)
    sim.fault(ORDER_CREATE, mode="accept_then_timeout", latencyMs=1500)

    outcome = send(buy(gateway), taken_reason="test_entry")

    assert outcome.status is OrderStatus.PLACED and outcome.ack.recovered
    assert [row["orderStatus"] for row in received(sim)] == ["Filled"]  # one order, not two
    assert gateway.positions()[0].size == Decimal("0.010")
    assert journal() == [("enter", "taken", "test_entry", LINK, {"qty": "0.010"})]


def test_an_order_no_answer_or_lookup_settles_is_journaled_as_outcome_unknown(sim):
    gateway = short_timeout_gateway(sim)
    sim.fault(ORDER_CREATE, mode="error", retCode=10016, latencyMs=600, count=2)

    outcome = send(buy(gateway), taken_reason="test_entry")

    assert outcome.status is OrderStatus.UNKNOWN and isinstance(outcome.error, OrderOutcomeUnknown)
    assert outcome.error.order_link_id == LINK
    [(action, outcome_word, reason_code, link, row_details)] = journal()
    assert (action, outcome_word, reason_code, link) == ("enter", "failed", "outcome_unknown", LINK)
    assert row_details == {"qty": "0.010", "code": None, "message": outcome.error.message}
