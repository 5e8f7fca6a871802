"""portfolio_trail_step against the simulator: high-water marks, pyramiding, trailing-stop exits."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core import keys
from core.models import TradingState
from portfolio.models import PortfolioOrder, PortfolioPosition, PortfolioState
from portfolio.scan import portfolio_scan_step
from portfolio.trail import portfolio_trail_step
from tests.support.portfolio import NOW, allow
from tests.support.sim import set_prices, sim_orders, sim_positions
from trading.flatten import positions_flatten
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def minute(n: int):
    return NOW + timedelta(minutes=n)


def trail(sim, gateway, at: int, **last_prices):
    set_prices(sim, **last_prices)
    return portfolio_trail_step(gateway=gateway, now=minute(at))


def pm_set(redis_db) -> set[str]:
    return set(redis_db.smembers(keys.PM_SYMBOLS))


def journal(**filters) -> list[tuple[str, str, str, str]]:
    rows = Decision.objects.filter(strategy="pm", **filters).order_by("id")
    return [(d.action, d.symbol, d.outcome, d.reason_code) for d in rows]


@pytest.fixture
def xrp_held(sim, gateway, pm):
    """PM long XRP: 18 at 2.7503 (a 50 USDT leg of a 300 USDT budget, 2 adds allowed)."""
    allow("XRPUSDT")
    set_prices(sim, XRPUSDT="2.7500")
    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == ["XRPUSDT"]
    return PortfolioPosition.objects.get(symbol="XRPUSDT")


def test_winners_get_bounded_adds_within_the_budget(sim, gateway, pm, xrp_held):
    # 2.7503 x 1.03 = 2.832809: 2.83 is not yet a step up, 2.84 is.
    assert trail(sim, gateway, 1, XRPUSDT="2.8300").added == []
    first = trail(sim, gateway, 2, XRPUSDT="2.8400")
    assert first.added == ["XRPUSDT"]
    # The step is measured from the last add's fill, 2.8403: 2.8403 x 1.03 = 2.925509.
    assert trail(sim, gateway, 3, XRPUSDT="2.9200").added == []
    assert trail(sim, gateway, 4, XRPUSDT="2.9300").added == ["XRPUSDT"]
    # Two adds made: no third, however far it runs.
    assert trail(sim, gateway, 5, XRPUSDT="3.0200").added == []
    assert trail(sim, gateway, 6, XRPUSDT="4.0000").added == []

    buys = [(o["side"], o["qty"], o["reduceOnly"]) for o in sim_orders(sim)]
    # Each add is one 50 USDT leg: 50 / (2.84 x 1.002) = 17.57 -> 17; 50 / (2.93 x 1.002) = 17.03 -> 17.
    assert buys == [("Buy", "18", False), ("Buy", "17", False), ("Buy", "17", False)]
    assert all(o["orderLinkId"].startswith("pm-add-XRP-") for o in sim_orders(sim)[1:])
    row = sim_positions(sim)["XRPUSDT"]
    assert row["size"] == "52" and row["leverage"] == "1"
    assert Decimal(row["positionIM"]) == Decimal("49.5054") + Decimal("48.2851") + Decimal("49.8151")
    assert Decimal(row["positionIM"]) <= pm.budget_usdt

    position = PortfolioPosition.objects.get(pk=xrp_held.pk)
    assert (position.qty, position.adds_made, position.last_add_price, position.high_water_price) == (
        Decimal("52"),
        2,
        Decimal("2.9303"),
        Decimal("4.0000"),
    )
    assert position.cost_usdt == Decimal("147.6056")
    assert journal(action="add") == [("add", "XRPUSDT", "taken", "pyramid_step")] * 2


def test_an_add_never_goes_above_the_budget(sim, gateway, pm, xrp_held):
    pm.budget_usdt = Decimal("60")  # shrunk after the entry: 60 - 49.5054 = 10.49 USDT left
    pm.save()
    assert trail(sim, gateway, 1, XRPUSDT="2.8400").added == ["XRPUSDT"]
    # 10.4946 / (2.84 x 1.002) = 3.69 -> 3 XRP; then nothing is left for a second add.
    assert [o["qty"] for o in sim_orders(sim)] == ["18", "3"]
    assert trail(sim, gateway, 2, XRPUSDT="2.9500").added == []
    assert ("add", "XRPUSDT", "skipped", "below_min_qty") in journal()
    assert Decimal(sim_positions(sim)["XRPUSDT"]["positionIM"]) <= Decimal("60")


def test_the_trailing_stop_closes_pm_exact_share_reduce_only_and_releases_the_symbol(
    sim, gateway, pm, redis_db
):
    pm.pyramid_max_adds = 0  # one leg of 300 / 2 = 150 USDT: 150 / 2.7555 = 54.4 -> 54
    pm.save()
    allow("XRPUSDT")
    set_prices(sim, XRPUSDT="2.7500")
    portfolio_scan_step(gateway=gateway, now=NOW)
    assert pm_set(redis_db) == {"XRPUSDT"}

    assert trail(sim, gateway, 1, XRPUSDT="3.0200").high_water_raised == ["XRPUSDT"]
    assert trail(sim, gateway, 2, XRPUSDT="2.9000").high_water_raised == []  # marks only rise
    assert trail(sim, gateway, 3, XRPUSDT="2.8700").exited == []  # 3.02 x 0.95 = 2.869
    result = trail(sim, gateway, 4, XRPUSDT="2.8600")

    assert result.exited == ["XRPUSDT"]
    assert sim_positions(sim) == {}
    close = sim_orders(sim)[-1]
    assert (close["side"], close["qty"], close["reduceOnly"]) == ("Sell", "54", True)
    assert close["orderLinkId"].startswith("pm-exit-XRP-")
    assert pm_set(redis_db) == set()
    position = PortfolioPosition.objects.get()
    assert (position.status, position.exit_reason, position.exit_price, position.high_water_price) == (
        "closed",
        "trailing_stop",
        Decimal("2.8597"),  # 2.86 less 1 bp, rounded to the tick away from the seller
        Decimal("3.0200"),
    )
    exit_row = Decision.objects.get(action="exit")
    assert (exit_row.outcome, exit_row.reason_code, exit_row.order_link_id) == (
        "taken",
        "trailing_stop",
        close["orderLinkId"],
    )
    assert exit_row.details["stop_price"] == "2.869" and exit_row.details["high_water_price"] == "3.02"

    # Run again, and again in the same minute: nothing left to do, nothing sent.
    sent = len(sim.state()["orders"])
    assert trail(sim, gateway, 4).status == "idle"
    assert trail(sim, gateway, 5, XRPUSDT="2.5000").status == "idle"
    assert len(sim.state()["orders"]) == sent


def test_exits_run_while_trading_is_locked_but_adds_do_not(sim, gateway, pm, xrp_held, redis_db):
    TradingState.objects.update_or_create(pk=1, defaults={"panic_locked": True})

    step = trail(sim, gateway, 1, XRPUSDT="2.9000")
    assert step.added == [] and step.adds_blocked == "trading_not_allowed"
    # 2.9 x 0.95 = 2.755; the exchange's trailing stop is at 2.9 - 0.1651 = 2.7349
    assert trail(sim, gateway, 2, XRPUSDT="2.7400").exited == ["XRPUSDT"]

    assert [(o["side"], o["qty"]) for o in sim_orders(sim)] == [("Buy", "18"), ("Sell", "18")]
    assert sim_positions(sim) == {} and pm_set(redis_db) == set()


def test_adds_stop_while_pm_is_disabled_but_the_stop_still_protects(sim, gateway, pm, xrp_held):
    pm.enabled = False
    pm.save()
    assert trail(sim, gateway, 1, XRPUSDT="2.9000").adds_blocked == "disabled"
    assert trail(sim, gateway, 2, XRPUSDT="2.7400").exited == ["XRPUSDT"]


def test_positions_pm_did_not_open_are_left_alone(sim, gateway, pm, xrp_held, redis_db):
    # Someone else's DOGE long, and someone else's 10 XRP on top of PM's 18.
    gateway.place_order(
        symbol="DOGEUSDT",
        side=Side.BUY,
        qty=Decimal("500"),
        order_link_id="hand-doge",
        reference_price=Decimal("0.33"),
    )
    gateway.place_order(
        symbol="XRPUSDT",
        side=Side.BUY,
        qty=Decimal("10"),
        order_link_id="hand-xrp",
        reference_price=Decimal("2.75"),
    )

    # The exchange's trailing stop would sell the hand's 10 XRP too: the next pass removes it.
    assert sim_positions(sim)["XRPUSDT"]["trailingStop"] == "0.1651"
    assert trail(sim, gateway, 1).backstop_set == ["XRPUSDT"]
    assert sim_positions(sim)["XRPUSDT"]["trailingStop"] == "0"
    assert ("backstop", "XRPUSDT", "taken", "removed_position_shared") in journal()

    set_prices(sim, DOGEUSDT="0.10000")  # a crash on the foreign position: not PM's business
    result = trail(sim, gateway, 2, XRPUSDT="2.5000")  # 2.7503 x 0.95 = 2.6128: PM's stop

    assert result.exited == ["XRPUSDT"]
    rows = sim_positions(sim)
    assert (rows["DOGEUSDT"]["size"], rows["XRPUSDT"]["size"]) == ("500", "10")  # only PM's 18 went
    close = sim_orders(sim)[-1]
    assert (close["symbol"], close["side"], close["qty"], close["reduceOnly"]) == (
        "XRPUSDT",
        "Sell",
        "18",
        True,
    )
    assert pm_set(redis_db) == set()
    assert not [o for o in sim_orders(sim) if o["symbol"] == "DOGEUSDT" and o["orderLinkId"] != "hand-doge"]


def test_a_position_closed_elsewhere_is_released(sim, gateway, pm, xrp_held, redis_db):
    positions_flatten(gateway=gateway, strategy="risk", run_key="daily-test", pause_s=0)  # the daily stop

    result = trail(sim, gateway, 1, XRPUSDT="2.7000")

    assert result.closed_elsewhere == ["XRPUSDT"] and result.exited == []
    position = PortfolioPosition.objects.get()
    assert (position.status, position.exit_reason) == ("closed", "closed_elsewhere")
    assert pm_set(redis_db) == set()
    assert not [o for o in sim_orders(sim) if o["orderLinkId"].startswith("pm-exit")]


def test_an_entry_whose_outcome_was_unknown_is_settled_not_resent(sim, gateway, pm, redis_db):
    allow("XRPUSDT")
    set_prices(sim, XRPUSDT="2.7500")
    # The order lands but its lookup fails: the entry stays pending, the symbol PM-managed.
    sim.fault("/v5/order/realtime", mode="error", retCode=10016, count=1)
    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == ["XRPUSDT"]
    order = PortfolioOrder.objects.get()
    assert (order.status, order.position.status) == ("pending", "opening")
    assert pm_set(redis_db) == {"XRPUSDT"}

    result = trail(sim, gateway, 1)
    assert result.settled == [order.order_link_id]
    position = PortfolioPosition.objects.get()
    assert (position.status, position.qty, position.entry_price) == ("open", Decimal("18"), Decimal("2.7503"))
    # The same scan again (its claim wiped): the symbol is PM's, nothing goes out.
    PortfolioState.objects.update(last_scan_at=None)
    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == []
    assert len(sim_orders(sim)) == 1
    assert ("enter", "XRPUSDT", "taken", "settled_filled") in journal()


def test_an_order_that_never_reached_the_exchange_is_failed_after_the_grace(sim, gateway, pm, redis_db):
    allow("XRPUSDT")
    # A worker died between writing the entry down and sending it.
    position = PortfolioPosition.objects.create(symbol="XRPUSDT", status="opening", created_at=NOW)
    PortfolioOrder.objects.create(
        position=position,
        leg="entry",
        order_link_id="pm-entry-XRP-0000000000000000",
        qty=Decimal("18"),
        reference_price=Decimal("2.75"),
        created_at=NOW,
    )
    assert trail(sim, gateway, 1).settled == []  # Bybit may still be creating it
    assert pm_set(redis_db) == {"XRPUSDT"}  # resynced from the book: PM-managed meanwhile
    assert trail(sim, gateway, 2).settled == ["pm-entry-XRP-0000000000000000"]
    assert PortfolioPosition.objects.get().status == "failed"
    assert pm_set(redis_db) == set() and sim_orders(sim) == []


def test_the_pm_set_is_rebuilt_from_the_book(sim, gateway, pm, xrp_held, redis_db):
    redis_db.delete(keys.PM_SYMBOLS)  # Redis restarted without its data
    redis_db.sadd(keys.PM_SYMBOLS, "LTCUSDT")  # and a stale member
    trail(sim, gateway, 1, XRPUSDT="2.7500")
    assert pm_set(redis_db) == {"XRPUSDT"}


def test_a_refused_exit_is_retried_next_minute_under_a_new_id(sim, gateway, pm, xrp_held, redis_db):
    sim.fault("/v5/order/create", mode="error", retCode=10001, count=1)

    first = trail(sim, gateway, 1, XRPUSDT="2.6000")  # PM's stop, above the exchange's 2.5849
    assert first.failed == ["XRPUSDT"] and first.exited == []
    assert PortfolioPosition.objects.get().status == "closing"
    assert pm_set(redis_db) == {"XRPUSDT"}  # still PM's until the exit is verified

    second = trail(sim, gateway, 2)
    assert second.exited == ["XRPUSDT"]
    exits = list(
        PortfolioOrder.objects.filter(leg="exit").order_by("id").values_list("status", "order_link_id")
    )
    assert [status for status, _ in exits] == ["failed", "filled"] and exits[0][1] != exits[1][1]
    assert sim_positions(sim) == {} and pm_set(redis_db) == set()
    assert [o["orderLinkId"] for o in sim_orders(sim) if o["reduceOnly"]] == [exits[1][1]]
    assert ("exit", "XRPUSDT", "failed", "BadRequest") in journal()


def test_a_step_backs_off_while_the_other_holds_the_book(sim, gateway, pm, xrp_held, redis_db, monkeypatch):
    from portfolio import book

    monkeypatch.setattr(book, "BOOK_LOCK_WAIT_S", 0.05)
    held = redis_db.lock(keys.PM_BOOK_LOCK, timeout=5)
    assert held.acquire(blocking=False)
    try:
        assert trail(sim, gateway, 1, XRPUSDT="2.6000").status == "busy"
        assert PortfolioState.objects.update(last_scan_at=None) == 1
        assert portfolio_scan_step(gateway=gateway, now=minute(1)).status == "busy"
    finally:
        held.release()
    assert sim_positions(sim)["XRPUSDT"]["size"] == "18"  # nothing happened meanwhile
    assert trail(sim, gateway, 2).exited == ["XRPUSDT"]
