"""closed_pnl_sync_step against the real simulator: trades of each owner opened and closed
through the gateway, then Bybit's closed PnL synced, attributed, with fees, idempotently."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.utils import timezone

from risk.closed_pnl import closed_pnl_sync_step
from risk.models import ClosedPnl
from risk.tasks import closed_pnl_sync
from tests.support.book import make_coin
from tests.support.sim import set_prices
from trading import worker_gateway as worker_gateway_module
from trading.models import Decision
from trading.rules import Side
from trading.rules.order_link_id import order_link_id

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

TAKER_FEE = Decimal("0.00055")  # the simulator's taker fee (every market order pays it)
D = Decimal


def _link(strategy: str, symbol: str, key: str, leg: str = "entry") -> str:
    return order_link_id(strategy=strategy, symbol=symbol, decision_key=key, leg=leg)


def _entry(gateway, *, strategy: str, action: str, symbol: str, side: Side, qty: str, price: str, key: str):
    """An entry as the strategy sends it (its orderLinkId) and journals it (a taken entry)."""
    link = _link(strategy, symbol, key)
    gateway.place_order(symbol=symbol, side=side, qty=D(qty), order_link_id=link, reference_price=D(price))
    Decision.objects.create(
        strategy=strategy, symbol=symbol, action=action, outcome="taken", order_link_id=link
    )
    return link


def _reduce(gateway, *, symbol: str, side: Side, qty: str, price: str, link: str) -> None:
    gateway.place_order(
        symbol=symbol,
        side=side,
        qty=D(qty),
        order_link_id=link,
        reduce_only=True,
        reference_price=D(price),
    )


def _fees_paid(gateway, order_id: str) -> Decimal:
    """What the venue charged an order, from its fills."""
    return sum((e.exec_fee for e in gateway.executions() if e.order_id == order_id), D("0"))


@pytest.fixture
def closed_trades(gateway, sim):
    """Five closes:
    - WL long BTC, closed by Bybit's take-profit (an order with no orderLinkId);
    - PM long ETH, 0.2 closed by a risk- reduction, the remaining 0.3 by the portfolio's pm- exit;
    - a manual SOL long closed by hand;
    - a manual BTC short after WL's long (the journal has no WL short: manual).
    """
    make_coin("BTCUSDT")
    _entry(
        gateway,
        strategy="wl",
        action="open_long",
        symbol="BTCUSDT",
        side=Side.BUY,
        qty="0.010",
        price="97000",
        key="liq-1",
    )
    gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.BUY, take_profit=D("98000.0"))
    set_prices(sim, BTCUSDT="98500.00")  # the TP fires
    assert not gateway.positions(symbol="BTCUSDT")

    _entry(
        gateway,
        strategy="pm",
        action="enter",
        symbol="ETHUSDT",
        side=Side.BUY,
        qty="0.50",
        price="3300",
        key="scan-1",
    )
    set_prices(sim, ETHUSDT="3250.00")
    _reduce(
        gateway,
        symbol="ETHUSDT",
        side=Side.SELL,
        qty="0.20",
        price="3250",
        link=_link("risk", "ETHUSDT", "im-1", leg="reduce"),
    )
    set_prices(sim, ETHUSDT="3400.00")
    _reduce(
        gateway,
        symbol="ETHUSDT",
        side=Side.SELL,
        qty="0.30",
        price="3400",
        link=_link("pm", "ETHUSDT", "trail-1", leg="exit"),
    )

    gateway.place_order(
        symbol="SOLUSDT", side=Side.BUY, qty=D("2.0"), order_link_id="hand-sol", reference_price=D("180")
    )
    set_prices(sim, SOLUSDT="175.000")
    _reduce(gateway, symbol="SOLUSDT", side=Side.SELL, qty="2.0", price="175", link="hand-sol-out")

    gateway.place_order(
        symbol="BTCUSDT", side=Side.SELL, qty=D("0.020"), order_link_id="hand-btc", reference_price=D("98500")
    )
    set_prices(sim, BTCUSDT="98000.00")
    _reduce(gateway, symbol="BTCUSDT", side=Side.BUY, qty="0.020", price="98000", link="hand-btc-out")
    return gateway


def test_each_close_goes_to_the_strategy_that_owned_the_position(closed_trades):
    result = closed_pnl_sync_step(gateway=closed_trades, now=timezone.now())
    assert (
        result.found_work,
        result.fetched,
        result.created,
        result.updated,
        result.deferred,
        result.error,
    ) == (
        True,
        5,
        5,
        0,
        0,
        "",
    )
    rows = {(row.symbol, row.side, row.closed_qty): row for row in ClosedPnl.objects.all()}
    assert {key: (row.strategy, row.order_link_id[:9]) for key, row in rows.items()} == {
        ("BTCUSDT", "long", D("0.010")): ("WL", ""),  # Bybit's TP: no orderLinkId, the journal says WL
        ("ETHUSDT", "long", D("0.20")): ("PM", "risk-redu"),  # risk closed PM's position
        ("ETHUSDT", "long", D("0.30")): ("PM", "pm-exit-E"),
        ("SOLUSDT", "long", D("2.0")): ("manual", "hand-sol-"),
        ("BTCUSDT", "short", D("0.020")): ("manual", "hand-btc-"),  # WL only ever went long
    }
    for row in rows.values():
        # The simulator's fees: the taker rate on each side's value; the close fee is the order's own.
        assert row.close_fee == _fees_paid(closed_trades, row.order_id)
        assert abs(row.close_fee - row.avg_exit_price * row.closed_qty * TAKER_FEE) < D("1e-7")
        assert abs(row.open_fee - row.avg_entry_price * row.closed_qty * TAKER_FEE) < D("1e-7")
        direction = 1 if row.side == "long" else -1
        gross = (row.avg_exit_price - row.avg_entry_price) * row.closed_qty * direction
        assert abs(gross - row.open_fee - row.close_fee - row.closed_pnl) < D("1e-7")
    # Won or lost as the prices moved: BTC 97000 -> 98000+ (TP), ETH 3300 -> 3250 then 3400,
    # SOL 180 -> 175, the BTC short 98500 -> 98000.
    signs = {key: row.closed_pnl > 0 for key, row in rows.items()}
    assert list(signs.values()).count(True) == 3
    assert not signs[("ETHUSDT", "long", D("0.20"))] and not signs[("SOLUSDT", "long", D("2.0"))]


def test_a_resync_changes_nothing_and_asks_for_no_order(closed_trades, sim):
    first = closed_pnl_sync_step(gateway=closed_trades, now=timezone.now())
    assert first.created == 5
    before = {row.order_id: (row.synced_at, row.strategy, row.open_fee) for row in ClosedPnl.objects.all()}
    # Were an order read again, this fault would make the pass fail.
    sim.fault("/v5/order/history", retCode=10001, retMsg="params error", count=5)
    again = closed_pnl_sync_step(gateway=closed_trades, now=timezone.now())
    assert (again.found_work, again.fetched, again.created, again.updated, again.error) == (
        False,
        5,
        0,
        0,
        "",
    )
    assert {
        row.order_id: (row.synced_at, row.strategy, row.open_fee) for row in ClosedPnl.objects.all()
    } == before


def test_it_follows_the_cursor_through_every_page(closed_trades):
    result = closed_pnl_sync_step(gateway=closed_trades, now=timezone.now(), page_limit=2)
    assert (result.fetched, result.created) == (5, 5)
    assert ClosedPnl.objects.count() == 5


def test_a_long_backlog_is_read_oldest_first_over_several_passes(closed_trades):
    first = closed_pnl_sync_step(gateway=closed_trades, now=timezone.now(), lookups_per_pass=2)
    assert (first.created, first.deferred) == (2, 3)
    assert sorted(ClosedPnl.objects.values_list("symbol", "closed_qty")) == [
        ("BTCUSDT", D("0.010")),  # WL's take-profit and PM's risk reduction closed first
        ("ETHUSDT", D("0.20")),
    ]
    second = closed_pnl_sync_step(gateway=closed_trades, now=timezone.now(), lookups_per_pass=2)
    third = closed_pnl_sync_step(gateway=closed_trades, now=timezone.now(), lookups_per_pass=2)
    assert [(second.created, second.deferred), (third.created, third.deferred)] == [(2, 1), (1, 0)]
    assert ClosedPnl.objects.count() == 5


def test_a_later_close_is_added_on_the_next_pass(closed_trades, sim):
    closed_pnl_sync_step(gateway=closed_trades, now=timezone.now())
    _entry(
        closed_trades,
        strategy="wl",
        action="open_short",
        symbol="SOLUSDT",
        side=Side.SELL,
        qty="1.0",
        price="175",
        key="liq-2",
    )
    _reduce(closed_trades, symbol="SOLUSDT", side=Side.BUY, qty="1.0", price="175", link="hand-cover")
    result = closed_pnl_sync_step(gateway=closed_trades, now=timezone.now())
    assert (result.created, result.updated) == (1, 0)
    newest = ClosedPnl.objects.first()
    assert (newest.symbol, newest.side, newest.strategy) == ("SOLUSDT", "short", "WL")


def test_an_exchange_error_is_one_warning_and_the_task_returns_a_summary(
    closed_trades, sim, caplog, monkeypatch
):
    monkeypatch.setattr(worker_gateway_module, "_gateway", closed_trades)  # the worker's gateway
    sim.fault("/v5/position/closed-pnl", retCode=10016, retMsg="service unavailable")
    with caplog.at_level(logging.WARNING, logger="risk.closed_pnl"):
        summary = closed_pnl_sync.apply().get()
    assert summary["created"] == 0 and "code 10016" in summary["error"]
    [record] = [r for r in caplog.records if r.name == "risk.closed_pnl"]
    assert record.getMessage().startswith("closed_pnl_sync_failed") and record.exc_info is None
    assert not ClosedPnl.objects.exists()
    # The next pass picks everything up.
    assert closed_pnl_sync_step(gateway=closed_trades, now=timezone.now()).created == 5


def test_the_admin_lists_the_rows_and_edits_none(closed_trades, admin_client):
    closed_pnl_sync_step(gateway=closed_trades, now=timezone.now())
    row = ClosedPnl.objects.get(symbol="SOLUSDT")
    page = admin_client.get("/admin/risk/closedpnl/")
    assert page.status_code == 200 and "hand-sol-out" in page.content.decode()
    assert admin_client.get("/admin/risk/closedpnl/add/").status_code == 403
    response = admin_client.post(f"/admin/risk/closedpnl/{row.pk}/change/", {"strategy": "WL"})
    assert response.status_code == 403 and ClosedPnl.objects.get(pk=row.pk).strategy == "manual"
