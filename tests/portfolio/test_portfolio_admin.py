"""PM's own records in the admin: visible, never edited by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio.models import PortfolioOrder, PortfolioPosition, PortfolioState
from tests.support.portfolio import NOW

pytestmark = pytest.mark.django_db


def test_positions_orders_and_state_are_read_only_in_the_admin(admin_client):
    position = PortfolioPosition.objects.create(
        symbol="XRPUSDT", status="open", qty=Decimal("18"), cost_usdt=Decimal("49.5054"), created_at=NOW
    )
    order = PortfolioOrder.objects.create(
        position=position,
        leg="entry",
        order_link_id="pm-entry-XRP-e33c459410d352f4",
        qty=Decimal("18"),
        reference_price=Decimal("2.75"),
        status="filled",
        created_at=NOW,
    )
    state = PortfolioState.load()

    for path in (
        "/admin/portfolio/portfolioposition/",
        f"/admin/portfolio/portfolioposition/{position.pk}/change/",
        "/admin/portfolio/portfolioorder/",
        f"/admin/portfolio/portfolioorder/{order.pk}/change/",
        "/admin/portfolio/portfoliostate/",
    ):
        response = admin_client.get(path)
        assert response.status_code == 200, path
    page = admin_client.get(f"/admin/portfolio/portfolioposition/{position.pk}/change/").content.decode()
    assert "pm-entry-XRP-e33c459410d352f4" in page and 'name="_save"' not in page
    assert admin_client.get("/admin/portfolio/portfolioposition/add/").status_code == 403
    response = admin_client.post(
        f"/admin/portfolio/portfoliostate/{state.pk}/change/", {"last_scan_key": "x"}
    )
    assert response.status_code == 403
    assert PortfolioState.load().last_scan_key == ""
