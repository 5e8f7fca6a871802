"""account_reconcile_step against the simulator: positions nobody of ours opened, under each
`unknown_positions` policy, and entry orders nobody is waiting for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from risk.models import RiskSettings
from risk.reconcile import account_reconcile_step
from risk.tpsl import tpsl_upkeep_step
from tests.support.book import make_coin
from tests.support.sim import market_order, sim_positions
from tests.support.telegram import OWNER
from trading.bybit import OrderType
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def now() -> datetime:
    return datetime.now(UTC)


def policy(value: str) -> None:
    RiskSettings.objects.update_or_create(pk=1, defaults={"unknown_positions": value})


def journal_wl_entry(symbol: str) -> None:
    Decision.objects.create(
        created_at=now() - timedelta(minutes=1),
        strategy=Decision.Strategy.LIQUIDATION,
        symbol=symbol,
        action="open_long",
        outcome=Decision.Outcome.TAKEN,
        order_link_id=f"wl-{symbol}-1",
    )


@pytest.fixture
def hand_book(sim, gateway, redis_db, alerts):
    """By hand: a BTC long (a configured coin) and a SOL long (no coin row); and an ETH long
    the engine's journal owns."""
    make_coin("BTCUSDT")
    make_coin("ETHUSDT")
    market_order(gateway, "BTCUSDT", Side.BUY, "0.010", "97000", "hand-btc")
    market_order(gateway, "SOLUSDT", Side.BUY, "1.0", "180", "hand-sol")
    market_order(gateway, "ETHUSDT", Side.BUY, "0.10", "3300", "wl-eth")
    journal_wl_entry("ETHUSDT")
    return gateway


def test_adopt_gives_a_configured_coin_tpsl_reports_the_rest_and_says_each_once(sim, hand_book, alerts):
    first = account_reconcile_step(gateway=hand_book, now=now())
    again = account_reconcile_step(gateway=hand_book, now=now())

    assert sorted(first.unknown) == ["BTCUSDT long", "SOLUSDT long"]  # ETH is the engine's
    assert first.adopted == ["BTCUSDT long"] and first.reported == ["SOLUSDT long"]
    assert sorted(again.unknown) == sorted(first.unknown) and not again.found_work
    rows = Decision.objects.filter(action="unknown_position")
    assert sorted(rows.values_list("symbol", "reason_code")) == [("BTCUSDT", "adopt"), ("SOLUSDT", "report")]
    texts = alerts.wait_sent(2)
    assert len(alerts.sent_to(OWNER)) == 2 and all("nobody of ours opened" in t.text for t in texts)

    upkeep = tpsl_upkeep_step(gateway=hand_book, now=now())
    assert "BTCUSDT" in upkeep.set and "SOLUSDT" in upkeep.skipped_unconfigured
    assert len(sim_positions(sim)) == 3  # nothing closed


def test_flatten_closes_every_unknown_position_and_leaves_the_engines_alone(sim, hand_book):
    policy("flatten")
    result = account_reconcile_step(gateway=hand_book, now=now())

    assert sorted(result.flattened) == ["BTCUSDT long", "SOLUSDT long"] and not result.failed
    assert set(sim_positions(sim)) == {"ETHUSDT"}
    rows = Decision.objects.filter(action="unknown_position", reason_code="flatten")
    assert rows.count() == 2 and all(row.details["flat"] for row in rows)


def test_report_touches_nothing_and_the_tpsl_upkeep_leaves_it_alone(sim, hand_book):
    policy("report")
    result = account_reconcile_step(gateway=hand_book, now=now())
    upkeep = tpsl_upkeep_step(gateway=hand_book, now=now())

    assert sorted(result.reported) == ["BTCUSDT long", "SOLUSDT long"] and not result.adopted
    assert upkeep.skipped_unknown == ["BTCUSDT"] and upkeep.set == ["ETHUSDT"]
    assert sim_positions(sim)["BTCUSDT"]["takeProfit"] in ("", "0", "0.00")
    assert len(sim_positions(sim)) == 3


def test_an_engine_entry_left_resting_by_a_dead_run_is_cancelled_and_journaled(sim, gateway, redis_db):
    market_order(gateway, "BTCUSDT", Side.BUY, "0.002", "97000", "wl-BTCUSDT-filled")
    journal_wl_entry("BTCUSDT")
    for link, side, price, reduce_only in (
        ("wl-BTCUSDT-old", Side.BUY, "90000", False),  # an entry resting: no run of ours rests one
        ("wl-BTCUSDT-close", Side.SELL, "99000", True),  # a reduce-only close: not an entry
        ("hand-limit", Side.BUY, "90000", False),  # not the engine's
    ):
        gateway.place_order(
            symbol="BTCUSDT",
            side=side,
            qty=Decimal("0.001"),
            order_link_id=link,
            order_type=OrderType.LIMIT,
            price=Decimal(price),
            reduce_only=reduce_only,
        )
    fresh = account_reconcile_step(gateway=gateway, now=now())
    later = account_reconcile_step(gateway=gateway, now=now() + timedelta(minutes=2))

    assert fresh.orphans_cancelled == []  # under a minute old: its run may still be waiting
    assert later.orphans_cancelled == ["wl-BTCUSDT-old"]
    assert {o.order_link_id for o in gateway.open_orders()} == {"wl-BTCUSDT-close", "hand-limit"}
    assert Decision.objects.get(action="orphan_cancelled").order_link_id == "wl-BTCUSDT-old"
