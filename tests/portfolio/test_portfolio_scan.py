"""portfolio_scan_step against the simulator: who is entered, how big, and when nothing is."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core import keys
from core.models import TradingState
from portfolio.models import AllowlistEntry, PortfolioOrder, PortfolioPosition, PortfolioState
from portfolio.scan import portfolio_scan_step
from tests.support.portfolio import NOW, allow
from tests.support.sim import set_prices, sim_orders, sim_positions
from trading.errors import RetryableError
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def pm_set(redis_db) -> set[str]:
    return set(redis_db.smembers(keys.PM_SYMBOLS))


def journal(**filters) -> list[tuple[str, str, str, str]]:
    rows = Decision.objects.filter(strategy="pm", **filters).order_by("id")
    return [(d.action, d.symbol, d.outcome, d.reason_code) for d in rows]


@pytest.fixture
def ranked_market(sim, pm):
    """24 h momentum: XRP +10 %, DOGE +5 %, ADA +2 % (the minimum), LINK -5 %."""
    allow("XRPUSDT", "DOGEUSDT", "ADAUSDT", "LINKUSDT")
    set_prices(sim, XRPUSDT="2.7500", DOGEUSDT="0.34650", ADAUSDT="0.9690", LINKUSDT="19.000")
    return pm


def test_it_enters_the_top_ranked_symbols_long_at_1x_within_budget(sim, gateway, ranked_market, redis_db):
    result = portfolio_scan_step(gateway=gateway, now=NOW)

    assert result.status == "scanned" and result.scan_key == "20250310T1200"
    assert result.momenta == {
        "XRPUSDT": "10.0000",
        "DOGEUSDT": "5.0000",
        "ADAUSDT": "2.0000",
        "LINKUSDT": "-5.0000",
    }
    assert result.entered == ["XRPUSDT", "DOGEUSDT"]  # max_positions 2, best first
    assert result.skipped == {"ADAUSDT": "no_free_slot", "LINKUSDT": "below_min_momentum"}
    rows = sim_positions(sim)
    assert set(rows) == {"XRPUSDT", "DOGEUSDT"}
    # Legs of 300 / (2 x 3) = 50 USDT, sized at price x 1.002 and rounded down to the qty step:
    # XRP 50 / 2.7555 = 18.1 -> 18, DOGE 50 / 0.347193 = 144.01 -> 144. Fills are 1 bp up.
    assert (rows["XRPUSDT"]["side"], rows["XRPUSDT"]["size"], rows["XRPUSDT"]["avgPrice"]) == (
        "Buy",
        "18",
        "2.7503",
    )
    assert (rows["DOGEUSDT"]["side"], rows["DOGEUSDT"]["size"], rows["DOGEUSDT"]["avgPrice"]) == (
        "Buy",
        "144",
        "0.34654",
    )
    assert {row["leverage"] for row in rows.values()} == {"1"}
    margin = sum(Decimal(row["positionIM"]) for row in rows.values())
    assert margin == Decimal("49.5054") + Decimal("49.90176") and margin <= Decimal("300")

    assert pm_set(redis_db) == {"XRPUSDT", "DOGEUSDT"}
    xrp = PortfolioPosition.objects.get(symbol="XRPUSDT")
    assert (xrp.status, xrp.qty, xrp.entry_price, xrp.cost_usdt, xrp.high_water_price, xrp.adds_made) == (
        "open",
        Decimal("18"),
        Decimal("2.7503"),
        Decimal("49.5054"),
        Decimal("2.7503"),
        0,
    )
    orders = sim_orders(sim)
    assert [(o["symbol"], o["side"], o["qty"], o["reduceOnly"]) for o in orders] == [
        ("XRPUSDT", "Buy", "18", False),
        ("DOGEUSDT", "Buy", "144", False),
    ]
    assert all(o["orderLinkId"].startswith("pm-entry-") for o in orders)
    assert {o.order_link_id for o in PortfolioOrder.objects.all()} == {o["orderLinkId"] for o in orders}
    assert journal(action="enter") == [
        ("enter", "XRPUSDT", "taken", "top_momentum"),
        ("enter", "DOGEUSDT", "taken", "top_momentum"),
        ("enter", "ADAUSDT", "skipped", "no_free_slot"),
        ("enter", "LINKUSDT", "skipped", "below_min_momentum"),
    ]
    taken = Decision.objects.get(action="enter", symbol="XRPUSDT")
    assert taken.order_link_id == orders[0]["orderLinkId"]
    assert taken.details["momentum_pct"] == "10.0000" and taken.details["leverage"] == "1"
    assert journal(action="scan") == [("scan", "", "taken", "scanned")]


def test_nothing_is_done_while_pm_is_disabled(sim, gateway, ranked_market, redis_db):
    ranked_market.enabled = False
    ranked_market.save()

    assert portfolio_scan_step(gateway=gateway, now=NOW).status == "disabled"

    assert sim_orders(sim) == [] and sim_positions(sim) == {}
    assert pm_set(redis_db) == set() and journal() == []
    assert PortfolioState.load().last_scan_at is None  # the first scan runs as soon as PM is on


@pytest.mark.parametrize(
    "switch",
    [
        {"panic_locked": True},
        {"halted": True},
        {"disabled_until": NOW + timedelta(hours=12), "disabled_reason": "daily control: stop hit"},
    ],
    ids=["panic-locked", "halted", "disabled-for-the-day"],
)
def test_nothing_is_entered_while_trading_is_not_allowed(sim, gateway, ranked_market, redis_db, switch):
    TradingState.objects.update_or_create(pk=1, defaults=switch)

    result = portfolio_scan_step(gateway=gateway, now=NOW)

    assert result.status == "trading_not_allowed" and result.entered == []
    assert sim_orders(sim) == [] and sim_positions(sim) == {}
    assert pm_set(redis_db) == set() and not PortfolioPosition.objects.exists()
    assert journal(action="scan") == [("scan", "", "skipped", "trading_not_allowed")]
    # The allowlist's changes are journaled by every scan, entering or not.
    assert journal(action="allowlist") == [("allowlist", "", "taken", "allowlist_changed")]


def test_each_scan_journals_the_allowlist_changes_since_the_previous_one(sim, gateway, ranked_market):
    assert portfolio_scan_step(gateway=gateway, now=NOW).status == "scanned"
    AllowlistEntry.objects.filter(symbol="ADAUSDT").update(enabled=False)
    AllowlistEntry.objects.filter(symbol="LINKUSDT").delete()
    allow("LTCUSDT")
    assert portfolio_scan_step(gateway=gateway, now=NOW + timedelta(hours=1)).allowlist_added == ["LTCUSDT"]
    assert portfolio_scan_step(gateway=gateway, now=NOW + timedelta(hours=2)).allowlist_removed == []

    rows = Decision.objects.filter(strategy="pm", action="allowlist").order_by("id")
    assert [(row.details["added"], row.details["removed"]) for row in rows] == [
        (["ADAUSDT", "DOGEUSDT", "LINKUSDT", "XRPUSDT"], []),
        (["LTCUSDT"], ["ADAUSDT", "LINKUSDT"]),
    ]
    assert rows[1].details["allowlist"] == ["DOGEUSDT", "LTCUSDT", "XRPUSDT"]


def test_a_lapsed_daily_disable_does_not_block(sim, gateway, ranked_market):
    TradingState.objects.update_or_create(pk=1, defaults={"disabled_until": NOW - timedelta(seconds=1)})
    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == ["XRPUSDT", "DOGEUSDT"]


def test_a_scan_runs_once_per_interval_and_never_sends_an_order_twice(sim, gateway, ranked_market):
    assert portfolio_scan_step(gateway=gateway, now=NOW).status == "scanned"
    sent = len(sim.state()["orders"])

    assert portfolio_scan_step(gateway=gateway, now=NOW).status == "not_due"
    assert portfolio_scan_step(gateway=gateway, now=NOW + timedelta(minutes=59)).status == "not_due"
    # Even the very same scan again (its claim wiped): the symbols are held, nothing goes out.
    PortfolioState.objects.update(last_scan_at=None, last_scan_key="")
    again = portfolio_scan_step(gateway=gateway, now=NOW)
    assert again.status == "scanned" and again.entered == [] and again.skipped["ADAUSDT"] == "no_free_slot"
    # The next interval: both slots are taken, so nothing new either.
    later = portfolio_scan_step(gateway=gateway, now=NOW + timedelta(minutes=60))
    assert later.status == "scanned" and later.entered == []

    assert len(sim.state()["orders"]) == sent == 2
    assert PortfolioPosition.objects.count() == 2 and PortfolioOrder.objects.count() == 2


def test_an_allowlist_edit_is_picked_up_at_the_next_scan(sim, gateway, pm, redis_db):
    allow("XRPUSDT")
    set_prices(sim, XRPUSDT="2.7500", DOGEUSDT="0.34650")
    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == ["XRPUSDT"]

    allow("DOGEUSDT")  # an admin edit, no restart
    assert portfolio_scan_step(gateway=gateway, now=NOW + timedelta(minutes=30)).status == "not_due"
    result = portfolio_scan_step(gateway=gateway, now=NOW + timedelta(minutes=60))

    assert result.entered == ["DOGEUSDT"]
    assert set(sim_positions(sim)) == {"XRPUSDT", "DOGEUSDT"}
    assert pm_set(redis_db) == {"XRPUSDT", "DOGEUSDT"}


def test_a_disabled_allowlist_entry_is_not_entered(sim, gateway, pm):
    allow("XRPUSDT", enabled=False)
    allow("DOGEUSDT")
    set_prices(sim, XRPUSDT="2.7500", DOGEUSDT="0.34650")
    result = portfolio_scan_step(gateway=gateway, now=NOW)
    assert result.entered == ["DOGEUSDT"] and "XRPUSDT" not in result.momenta


def test_a_symbol_holding_a_position_pm_did_not_open_is_left_alone(sim, gateway, ranked_market, redis_db):
    gateway.place_order(
        symbol="XRPUSDT",
        side=Side.SELL,
        qty=Decimal("40"),
        order_link_id="by-hand",
        reference_price=Decimal("2.75"),
    )

    result = portfolio_scan_step(gateway=gateway, now=NOW)

    assert result.skipped["XRPUSDT"] == "position_not_ours"
    assert result.entered == ["DOGEUSDT", "ADAUSDT"]  # the next in line take the slots
    xrp = sim_positions(sim)["XRPUSDT"]
    assert (xrp["side"], xrp["size"]) == ("Sell", "40")
    assert [o["orderLinkId"] for o in sim_orders(sim) if o["symbol"] == "XRPUSDT"] == ["by-hand"]
    assert pm_set(redis_db) == {"DOGEUSDT", "ADAUSDT"}
    assert ("enter", "XRPUSDT", "skipped", "position_not_ours") in journal()


def test_a_market_read_failure_gives_the_scan_back_for_the_retry(sim, gateway, ranked_market):
    sim.fault("/v5/market/kline", mode="error", retCode=10016, count=1)

    with pytest.raises(RetryableError):
        portfolio_scan_step(gateway=gateway, now=NOW)
    assert PortfolioState.load().last_scan_at is None and sim_orders(sim) == []

    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == ["XRPUSDT", "DOGEUSDT"]


def test_an_entry_refused_by_the_exchange_frees_the_symbol(sim, gateway, ranked_market, redis_db):
    sim.fault("/v5/order/create", mode="error", retCode=110007, count=1)  # insufficient balance, once

    result = portfolio_scan_step(gateway=gateway, now=NOW)

    assert result.failed == ["XRPUSDT"] and result.entered == ["DOGEUSDT", "ADAUSDT"]  # the slot passed on
    assert pm_set(redis_db) == {"DOGEUSDT", "ADAUSDT"}
    assert PortfolioPosition.objects.get(symbol="XRPUSDT").status == "failed"
    assert ("enter", "XRPUSDT", "failed", "InsufficientBalance") in journal()


def test_a_symbol_too_small_for_its_leg_gives_its_slot_to_the_next(sim, gateway, pm):
    allow("BTCUSDT", "XRPUSDT", "DOGEUSDT")
    # BTC +10 % is the best, but a 50 USDT leg buys less than its 0.001 BTC minimum.
    set_prices(sim, BTCUSDT="106700.00", XRPUSDT="2.6250", DOGEUSDT="0.33990")  # XRP +5 %, DOGE +3 %

    result = portfolio_scan_step(gateway=gateway, now=NOW)

    assert result.skipped == {"BTCUSDT": "below_min_qty"}
    assert result.entered == ["XRPUSDT", "DOGEUSDT"]
    assert ("enter", "BTCUSDT", "skipped", "below_min_qty") in journal()
