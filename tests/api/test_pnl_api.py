"""GET /api/pnl: realised PnL per strategy and day, from the synced closed-PnL rows (never the
exchange), with the API's token and network rules, in the OpenAPI schema."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from risk.closed_pnl import closed_pnl_sync_step
from risk.models import ClosedPnl
from tests.support.sim import set_prices
from trading.models import Decision
from trading.rules import Side

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer(api_token):
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token}"}


def _close(*, strategy: str, days_ago: int, pnl: str, fees: str, order_id: str, now) -> ClosedPnl:
    """A stored close, ``days_ago`` UTC days before ``now``, its fees split evenly."""
    half = D(fees) / 2
    return ClosedPnl.objects.create(
        order_id=order_id,
        symbol="BTCUSDT",
        side="long",
        closed_qty=D("0.01"),
        avg_entry_price=D("97000"),
        avg_exit_price=D("98000"),
        closed_pnl=D(pnl),
        open_fee=half,
        close_fee=half,
        strategy=strategy,
        closed_at=now - timedelta(days=days_ago),
    )


def _by_strategy(rows: list[dict]) -> dict[str, tuple[str, str, int]]:
    return {row["strategy"]: (row["pnl"], row["fees"], row["closes"]) for row in rows}


def test_it_sums_per_strategy_today_the_last_7_and_30_days_and_per_day(client, bearer):
    now = timezone.now()
    _close(strategy="WL", days_ago=0, pnl="10", fees="1", order_id="a", now=now)
    _close(strategy="WL", days_ago=0, pnl="-4", fees="0.5", order_id="b", now=now)
    _close(strategy="PM", days_ago=3, pnl="20", fees="2", order_id="c", now=now)
    _close(strategy="manual", days_ago=12, pnl="-7", fees="0.25", order_id="d", now=now)
    _close(strategy="PM", days_ago=45, pnl="100", fees="3", order_id="e", now=now)  # beyond 30 days

    body = client.get("/api/pnl", **bearer).json()

    assert body["days"] == 30 and body["strategies"] == ["WL", "PM", "manual"]
    assert _by_strategy(body["today"]) == {
        "WL": ("6.00000000", "1.50000000", 2),
        "PM": ("0.00000000", "0.00000000", 0),
        "manual": ("0.00000000", "0.00000000", 0),
        "total": ("6.00000000", "1.50000000", 2),
    }
    assert _by_strategy(body["last_7_days"])["PM"] == ("20.00000000", "2.00000000", 1)
    assert _by_strategy(body["last_7_days"])["total"] == ("26.00000000", "3.50000000", 3)
    assert _by_strategy(body["last_30_days"])["total"] == ("19.00000000", "3.75000000", 4)
    daily = body["daily"]
    assert len(daily) == 30 * 3
    assert daily[-3:] == [
        {"date": body["date"], "strategy": "WL", "pnl": "6.00000000", "fees": "1.50000000", "closes": 2},
        {"date": body["date"], "strategy": "PM", "pnl": "0.00000000", "fees": "0.00000000", "closes": 0},
        {"date": body["date"], "strategy": "manual", "pnl": "0.00000000", "fees": "0.00000000", "closes": 0},
    ]
    three_days_ago = (now - timedelta(days=3)).date().isoformat()
    assert [row["pnl"] for row in daily if row["date"] == three_days_ago] == [
        "0.00000000",
        "20.00000000",
        "0.00000000",
    ]

    longer = client.get("/api/pnl?days=90", **bearer).json()
    assert len(longer["daily"]) == 90 * 3
    assert sum(D(row["pnl"]) for row in longer["daily"]) == D("119")
    assert len(client.get("/api/pnl?days=1", **bearer).json()["daily"]) == 3


@pytest.mark.parametrize("days", ["0", "91", "-3", "week"])
def test_days_outside_1_to_90_is_a_400(client, bearer, days):
    response = client.get(f"/api/pnl?days={days}", **bearer)
    assert response.status_code == 400 and "days" in response.json()


def test_it_needs_the_token_or_staff_and_a_listed_network(client, admin_client, bearer):
    assert client.get("/api/pnl").status_code == 401
    assert client.get("/api/pnl", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/api/pnl", REMOTE_ADDR="203.0.113.9", **bearer).status_code == 403
    assert admin_client.get("/api/pnl").status_code == 200
    assert client.get("/api/pnl", **bearer).status_code == 200


def test_the_schema_documents_it_with_its_days_parameter(client, bearer):
    schema = json.loads(client.get("/api/schema/?format=json", **bearer).content)
    operation = schema["paths"]["/api/pnl"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["days"]
    assert "200" in operation["responses"]


@pytest.mark.integration
def test_a_wl_and_a_pm_trade_closed_at_the_simulator_show_under_their_strategy(client, bearer, gateway, sim):
    for strategy, action, symbol, price, exit_price in (
        ("wl", "open_long", "BTCUSDT", "97000", "98000.00"),
        ("pm", "enter", "ETHUSDT", "3300", "3200.00"),
    ):
        gateway.place_order(
            symbol=symbol,
            side=Side.BUY,
            qty=D("0.10") if symbol == "ETHUSDT" else D("0.010"),
            order_link_id=f"{strategy}-entry-{symbol[:3]}-0123456789abcdef",
            reference_price=D(price),
        )
        Decision.objects.create(strategy=strategy, symbol=symbol, action=action, outcome="taken")
        set_prices(sim, **{symbol: exit_price})
        (position,) = gateway.positions(symbol=symbol)
        gateway.close_position(position=position, order_link_id=f"risk-close-{symbol[:3]}-0123456789abcdef")
    assert closed_pnl_sync_step(gateway=gateway, now=timezone.now()).created == 2

    today = {row["strategy"]: row for row in client.get("/api/pnl", **bearer).json()["today"]}
    stored = {row.strategy: row for row in ClosedPnl.objects.all()}
    assert set(stored) == {"WL", "PM"}
    for strategy in ("WL", "PM"):
        assert D(today[strategy]["pnl"]) == stored[strategy].closed_pnl
        assert D(today[strategy]["fees"]) == stored[strategy].open_fee + stored[strategy].close_fee > 0
    assert D(today["WL"]["pnl"]) > 0 > D(today["PM"]["pnl"])
    assert today["manual"]["closes"] == 0
