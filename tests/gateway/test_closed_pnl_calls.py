"""The gateway's closed-PnL reads against the running simulator: every page through the cursor,
a time window, and the closing order looked up by Bybit's orderId."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from trading.rules import Side

pytestmark = pytest.mark.integration


def _round_trips(gateway, sim, count: int) -> list[str]:
    """``count`` long BTC round trips; the closing orders' orderLinkIds, oldest first."""
    links = []
    for n in range(count):
        gateway.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=D("0.010"),
            order_link_id=f"t-open-{n}",
            reference_price=D("97000"),
        )
        (position,) = gateway.positions(symbol="BTCUSDT")
        gateway.close_position(position=position, order_link_id=f"t-close-{n}")
        links.append(f"t-close-{n}")
    return links


def test_closed_pnl_follows_the_cursor_to_the_last_page_or_stops_at_max_pages(gateway, sim):
    _round_trips(gateway, sim, 5)
    assert len(gateway.closed_pnl(limit=2, max_pages=None)) == 5
    assert len(gateway.closed_pnl(limit=2, max_pages=2)) == 4
    assert len({row.order_id for row in gateway.closed_pnl(limit=2, max_pages=None)}) == 5


def test_closed_pnl_keeps_to_its_time_window(gateway, sim):
    _round_trips(gateway, sim, 1)
    now = timezone.now()
    assert len(gateway.closed_pnl(start=now - timedelta(minutes=5))) == 1
    assert gateway.closed_pnl(start=now - timedelta(days=8), end=now - timedelta(days=1)) == []


def test_the_closing_order_is_found_by_its_order_id(gateway, sim):
    _round_trips(gateway, sim, 1)
    (row,) = gateway.closed_pnl()
    order = gateway.get_order_by_id(order_id=row.order_id, symbol="BTCUSDT")
    assert order is not None and order.order_link_id == "t-close-0" and order.cum_exec_fee > 0
    assert gateway.get_order_by_id(order_id=row.order_id).order_link_id == "t-close-0"  # any USDT symbol
    assert gateway.get_order_by_id(order_id="00000000-0000-0000-0000-000000000000") is None
