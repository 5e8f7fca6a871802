"""risk.snapshot: the worker's account snapshot for the dashboard, read from the real simulator."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core import keys
from risk.snapshot import account_snapshot_publish_step, position_owner
from tests.support.sim import make_sim_gateway

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def published(redis_db) -> dict:
    return json.loads(redis_db.get(keys.ACCOUNT_SNAPSHOT))


@pytest.mark.parametrize(
    ("symbol", "owner"),
    [("ETHUSDT", "PM"), ("BTCUSDT", "WL"), ("SOLUSDT", "manual"), ("BOTHUSDT", "PM")],
)
def test_the_portfolio_owns_its_symbols_before_a_configured_coin_does(symbol, owner):
    pm = frozenset({"ETHUSDT", "BOTHUSDT"})
    wl = frozenset({"BTCUSDT", "BOTHUSDT"})
    assert position_owner(symbol, pm=pm, wl=wl) == owner


def test_it_publishes_positions_orders_and_im_as_the_exchange_shows_them(sim, redis_db, three_owner_book):
    redis_db.sadd(keys.PM_SYMBOLS, "ETHUSDT")
    now = timezone.now()

    result = account_snapshot_publish_step(gateway=three_owner_book, now=now)

    # Two resting limits, and the TP and SL Bybit keeps as conditional orders of the BTC position.
    assert result.published and (result.positions, result.open_orders) == (3, 4)
    snapshot = published(redis_db)
    wallet = three_owner_book.wallet()
    assert Decimal(snapshot["equity"]) == wallet.total_equity
    assert Decimal(snapshot["im_pct"]) == wallet.im_pct > 0
    assert snapshot["at_ms"] == int(now.timestamp() * 1000)

    exchange = {p.symbol: p for p in three_owner_book.positions()}
    rows = {row["symbol"]: row for row in snapshot["positions"]}
    assert {s: (r["owner"], r["side"], Decimal(r["size"])) for s, r in rows.items()} == {
        "BTCUSDT": ("WL", "long", Decimal("0.010")),
        "ETHUSDT": ("PM", "short", Decimal("0.50")),
        "SOLUSDT": ("manual", "long", Decimal("2.0")),
    }
    for symbol, row in rows.items():
        assert Decimal(row["entry_price"]) == exchange[symbol].avg_price
        assert Decimal(row["mark_price"]) == exchange[symbol].mark_price
        assert Decimal(row["unrealised_pnl"]) == exchange[symbol].unrealised_pnl
    assert (Decimal(rows["BTCUSDT"]["take_profit"]), Decimal(rows["BTCUSDT"]["stop_loss"])) == (
        Decimal("99000.0"),
        Decimal("95000.0"),
    )
    assert rows["ETHUSDT"]["take_profit"] is None

    orders = {row["order_link_id"]: row for row in snapshot["open_orders"]}
    assert orders["pm-entry-SOL-0123456789abcdef"]["owner"] == "PM"  # by its orderLinkId
    assert orders["pm-entry-SOL-0123456789abcdef"]["price"] == "150.000"
    assert orders["by-hand-1"]["owner"] == "WL"  # not ours by its id: the symbol's owner
    assert orders["by-hand-1"]["reduce_only"] is True and orders["by-hand-1"]["stop_order_type"] == ""
    conditional = sorted(
        (o["stop_order_type"], o["owner"]) for o in snapshot["open_orders"] if not o["order_link_id"]
    )
    assert conditional == [("StopLoss", "WL"), ("TakeProfit", "WL")]  # the position's owner


def test_it_samples_equity_at_most_every_30_s_into_a_capped_list(sim, redis_db, gateway):
    now = timezone.now()
    first = account_snapshot_publish_step(gateway=gateway, now=now)
    second = account_snapshot_publish_step(gateway=gateway, now=now + timedelta(seconds=2))

    assert first.equity_sampled and not second.equity_sampled
    assert redis_db.lrange(keys.EQUITY_SAMPLES, 0, -1) == [f"{int(now.timestamp() * 1000)} 10000"]
    assert published(redis_db)["at_ms"] == int((now + timedelta(seconds=2)).timestamp() * 1000)


def test_a_failed_read_keeps_the_last_snapshot_and_says_why(sim, redis_db):
    gateway = make_sim_gateway(sim, max_attempts=1)  # the read fails at once, no retry
    now = timezone.now()
    account_snapshot_publish_step(gateway=gateway, now=now)
    sim.fault("/v5/account/wallet-balance", retCode=10016, retMsg="service busy")

    result = account_snapshot_publish_step(gateway=gateway, now=now + timedelta(seconds=2))

    assert not result.published and "10016" in result.error
    assert published(redis_db)["at_ms"] == int(now.timestamp() * 1000)  # the last good one stays
    error = json.loads(redis_db.get(keys.ACCOUNT_SNAPSHOT_ERROR))
    assert "10016" in error["error"] and "sim-api" not in error["error"]
    assert 0 < redis_db.ttl(keys.ACCOUNT_SNAPSHOT_ERROR) <= 120

    assert account_snapshot_publish_step(gateway=gateway, now=now + timedelta(seconds=4)).published
    assert redis_db.get(keys.ACCOUNT_SNAPSHOT_ERROR) is None


def test_the_beat_runs_the_snapshot_every_2_s():
    from django.conf import settings

    from controlpanel.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["risk-account-snapshot"]
    assert entry["task"] == "risk.account_snapshot" and entry["schedule"] <= 3
    app.loader.import_default_modules()
    assert "risk.account_snapshot" in app.tasks
