"""GET /api/account, /api/positions, /api/orders and /api/daily-pnl.csv: the account as the
worker last published it (a real account snapshot from the simulator), never the exchange."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core import keys
from risk.models import DailyPnL
from risk.snapshot import account_snapshot_publish_step

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def bearer(api_token):
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token}"}


@pytest.fixture
def published(three_owner_book, redis_db):
    """The worker's snapshot of a book with a WL, a PM and a manual position."""
    redis_db.sadd(keys.PM_SYMBOLS, "ETHUSDT")
    assert account_snapshot_publish_step(gateway=three_owner_book, now=timezone.now()).published
    return three_owner_book


def test_the_account_has_the_money_its_age_and_todays_limits(client, bearer, published):
    wallet = published.wallet()
    DailyPnL.objects.create(
        date=timezone.now().date(),
        baseline_equity=Decimal("10000"),
        last_equity=Decimal("10100"),
        pnl_usdt=Decimal("100"),
        pnl_pct=Decimal("1"),
        high_equity=Decimal("10100"),
        low_equity=Decimal("9990"),
    )
    body = client.get("/api/account", **bearer).json()
    assert body["available"] is True and body["stale"] is False and body["error"] == ""
    assert Decimal(body["equity"]) == wallet.total_equity
    assert Decimal(body["im_pct"]) == wallet.im_pct
    assert (body["im_warn_pct"], body["im_reduce_pct"]) == ("80.00", "100.00")
    daily = body["daily"]
    assert (daily["pnl_usdt"], daily["pnl_pct"], daily["outcome"]) == ("100.0000", "1.0000", "open")
    assert (Decimal(daily["target_equity"]), Decimal(daily["stop_equity"])) == (
        Decimal("11000"),
        Decimal("9500"),
    )


def test_positions_and_orders_name_their_owner(client, bearer, published):
    positions = client.get("/api/positions", **bearer).json()
    assert {row["symbol"]: row["owner"] for row in positions} == {
        "BTCUSDT": "WL",
        "ETHUSDT": "PM",
        "SOLUSDT": "manual",
    }
    btc = next(row for row in positions if row["symbol"] == "BTCUSDT")
    assert btc["take_profit"] and btc["liq_price"] is not None
    orders = client.get("/api/orders", **bearer).json()
    assert any(row["order_link_id"] == "pm-entry-SOL-0123456789abcdef" for row in orders)


def test_without_a_snapshot_it_says_why_and_an_old_one_is_stale(client, bearer, published, redis_db):
    import json

    raw = json.loads(redis_db.get(keys.ACCOUNT_SNAPSHOT))
    raw["at_ms"] -= 60_000
    redis_db.set(keys.ACCOUNT_SNAPSHOT, json.dumps(raw))
    body = client.get("/api/account", **bearer).json()
    assert body["stale"] is True and body["age_s"] >= 60

    redis_db.delete(keys.ACCOUNT_SNAPSHOT)
    body = client.get("/api/account", **bearer).json()
    assert body["available"] is False and body["equity"] is None
    assert body["error"] == "no snapshot yet (is the worker running?)"
    assert client.get("/api/positions", **bearer).json() == []


def test_the_daily_record_downloads_as_pnl_log_csv(client, bearer):
    today = timezone.now().date()
    for days, pnl in ((1, "-2"), (0, "1.5")):
        DailyPnL.objects.create(
            date=today - timedelta(days=days),
            baseline_equity=Decimal("10000"),
            last_equity=Decimal("10000") + Decimal(pnl) * 100,
            pnl_usdt=Decimal(pnl) * 100,
            pnl_pct=Decimal(pnl),
            high_equity=Decimal("10200"),
            low_equity=Decimal("9700"),
        )
    response = client.get("/api/daily-pnl.csv", **bearer)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert 'filename="pnl_log.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:2] == ["date", "baseline_equity"]
    assert [row[0] for row in rows[1:]] == [(today - timedelta(days=1)).isoformat(), today.isoformat()]
