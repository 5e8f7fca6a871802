"""The exchange's own trailing stop on PM positions (``portfolio.backstop``), against the
simulator: set at entry, kept in step, and an exit through it released by the next pass."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core import keys
from portfolio import rules
from portfolio.models import PortfolioPosition
from portfolio.scan import portfolio_scan_step
from portfolio.trail import portfolio_trail_step
from tests.support.portfolio import NOW, allow
from tests.support.sim import set_prices, sim_orders, sim_positions
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def journal(**filters) -> list[tuple[str, str, str, str]]:
    rows = Decision.objects.filter(strategy="pm", **filters).order_by("id")
    return [(d.action, d.symbol, d.outcome, d.reason_code) for d in rows]


def trail(sim, gateway, at: int, **last_prices):
    set_prices(sim, **last_prices)
    return portfolio_trail_step(gateway=gateway, now=NOW + timedelta(minutes=at))


@pytest.mark.parametrize(
    ("reference", "pct", "tick", "distance"),
    [
        ("2.7503", "5", "0.0001", "0.1651"),  # 0.165018 rounded up
        ("97000.00", "5", "0.10", "5820.00"),
        ("3.05", "5", "0.0001", "0.1830"),
        ("0.33", "0.5", "0.00001", "0.00198"),
        ("0.00010", "1", "0.00001", "0.00001"),  # never below one tick
    ],
)
def test_the_exchange_trail_is_a_fifth_wider_rounded_up_to_the_tick(reference, pct, tick, distance):
    assert rules.exchange_trail_distance(
        reference_price=Decimal(reference), trailing_stop_pct=Decimal(pct), tick_size=Decimal(tick)
    ) == Decimal(distance)


@pytest.mark.parametrize(
    ("distance", "high_water", "due"),
    [
        (None, "2.75", True),  # none on the exchange
        ("0.1651", "2.7503", False),  # 6.0 % of the mark
        ("0.1651", "3.00", False),  # 5.50 %: still at the band's edge
        ("0.1651", "3.01", True),  # 5.49 %: too close to PM's own 5 %
        ("0.1651", "2.50", True),  # 6.6 %: looser than meant (the % was lowered)
    ],
)
def test_the_exchange_trail_is_set_again_once_it_leaves_the_band(distance, high_water, due):
    assert (
        rules.exchange_trail_due(
            distance=Decimal(distance) if distance else None,
            high_water_price=Decimal(high_water),
            trailing_stop_pct=Decimal("5"),
        )
        is due
    )


@pytest.fixture
def xrp_held(sim, gateway, pm):
    """PM long XRP: 18 at 2.7503 (a 50 USDT leg), 5 % trailing stop."""
    allow("XRPUSDT")
    set_prices(sim, XRPUSDT="2.7500")
    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == ["XRPUSDT"]
    return PortfolioPosition.objects.get(symbol="XRPUSDT")


def test_a_pm_entry_carries_the_exchanges_trailing_stop(sim, gateway, xrp_held):
    row = sim_positions(sim)["XRPUSDT"]
    # 2.7503 x 5 % x 1.2 = 0.165018, up to the tick: Bybit sells at 6 % under the best price.
    assert (row["size"], row["trailingStop"]) == ("18", "0.1651")
    assert ("backstop", "XRPUSDT", "taken", "entry") in journal()
    # A pass inside the band leaves it as it is.
    assert trail(sim, gateway, 1, XRPUSDT="2.8000").backstop_set == []
    assert sim_positions(sim)["XRPUSDT"]["trailingStop"] == "0.1651"


def test_it_is_kept_in_step_as_the_price_and_the_size_grow(sim, gateway, pm, xrp_held):
    result = trail(sim, gateway, 1, XRPUSDT="3.0500")  # +10.9 %: an add, and 0.1651 is 5.4 % of 3.05

    assert result.added == ["XRPUSDT"] and result.backstop_set == ["XRPUSDT"]
    row = sim_positions(sim)["XRPUSDT"]
    assert (row["size"], row["trailingStop"]) == ("34", "0.1830")  # 3.05 x 6 %, the add included
    assert journal(action="backstop") == [
        ("backstop", "XRPUSDT", "taken", "entry"),
        ("backstop", "XRPUSDT", "taken", "resized"),
    ]
    detail = Decision.objects.filter(action="backstop").latest("id").details
    assert (detail["distance_before"], detail["distance"], detail["reference_price"]) == (
        "0.1651",
        "0.183",
        "3.05",
    )


def test_with_the_workers_stopped_the_exchange_closes_it_and_the_next_pass_releases_it(
    sim, gateway, pm, xrp_held, redis_db
):
    # No trail step runs: only the exchange watches the price.
    set_prices(sim, XRPUSDT="3.0000")
    set_prices(sim, XRPUSDT="2.8400")  # 3.00 - 0.1651 = 2.8349: not yet
    assert sim_positions(sim)["XRPUSDT"]["size"] == "18"
    set_prices(sim, XRPUSDT="2.8300")
    assert sim_positions(sim) == {}
    assert PortfolioPosition.objects.get().status == "open"  # the book has not looked yet

    result = portfolio_trail_step(gateway=gateway, now=NOW + timedelta(minutes=30))

    assert result.exchange_stopped == ["XRPUSDT"] and result.closed_elsewhere == []
    position = PortfolioPosition.objects.get()
    assert (position.status, position.exit_reason, position.exit_price) == (
        "closed",
        "exchange_trailing_stop",
        Decimal("2.8297"),  # 2.83 less 1 bp, to the tick away from the seller
    )
    assert set(redis_db.smembers(keys.PM_SYMBOLS)) == set()
    assert ("exit", "XRPUSDT", "taken", "exchange_trailing_stop") in journal()
    assert not [o for o in sim_orders(sim) if o["orderLinkId"].startswith("pm-exit")]  # PM sent nothing
    assert portfolio_trail_step(gateway=gateway, now=NOW + timedelta(minutes=31)).status == "idle"


def test_a_refused_trailing_stop_is_journaled_and_set_by_the_next_pass(sim, gateway, pm):
    allow("XRPUSDT")
    set_prices(sim, XRPUSDT="2.7500")
    sim.fault("/v5/position/trading-stop", mode="error", retCode=10001, count=1)

    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == ["XRPUSDT"]  # the entry stands
    assert sim_positions(sim)["XRPUSDT"]["trailingStop"] == "0"
    assert ("backstop", "XRPUSDT", "failed", "BadRequest") in journal()

    assert trail(sim, gateway, 1).backstop_set == ["XRPUSDT"]
    assert sim_positions(sim)["XRPUSDT"]["trailingStop"] == "0.1651"  # from the high-water mark 2.7503
    assert journal(action="backstop")[-1] == ("backstop", "XRPUSDT", "taken", "missing")
