"""im_watch_step against the simulator: the warn alert, the 20 % reduce and its cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core import keys
from risk import im_watch
from risk.im_watch import im_watch_step
from tests.support.sim import market_order
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def sizes(sim) -> dict[str, Decimal]:
    return {row["symbol"]: Decimal(row["size"]) for row in sim.state()["positions"]}


def reduce_orders(sim):
    return [o for o in sim.state()["orders"] if o["orderLinkId"].startswith("risk-")]


def test_below_the_warn_level_nothing_happens(sim, gateway, redis_db, alerts):
    market_order(gateway, "BTCUSDT", Side.BUY, "0.010", "97000", "t-long")

    result = im_watch_step(gateway=gateway, now=NOW)

    assert result.action == "none" and not result.found_work
    assert alerts.calls == [] and not Decision.objects.exists()


def test_above_the_warn_level_one_alert_per_cooldown(sim, gateway, redis_db, alerts):
    sim.reset(equity="1000")
    market_order(gateway, "BTCUSDT", Side.BUY, "0.090", "97000", "t-long")  # IM 873.09 of ~994 equity

    first = im_watch_step(gateway=gateway, now=NOW)
    second = im_watch_step(gateway=gateway, now=NOW + timedelta(seconds=5))

    assert first.action == "warn" and Decimal("80") <= first.im_pct < Decimal("100")
    assert first.warned and not second.warned and second.action == "warn"
    [alert] = alerts.sent
    assert alert.text.startswith(f"IM {first.im_pct.quantize(Decimal('0.01'))} % is above the warn level 80")
    journal = Decision.objects.get(action="im_warn")
    assert (journal.strategy, journal.outcome, journal.reason_code) == ("risk", "taken", "im_warn")
    assert reduce_orders(sim) == []  # a warning never trades
    assert 0 < redis_db.ttl(keys.RISK_IM_WARN) <= 300

    redis_db.delete(keys.RISK_IM_WARN)  # the interval has passed
    assert im_watch_step(gateway=gateway, now=NOW + timedelta(minutes=6)).warned
    assert len(alerts.sent) == 2


@pytest.fixture
def overloaded(sim, gateway, redis_db):
    """A 1000 USDT account: BTC long 0.080 and a small SOL long (ours), an ETH short (the portfolio's);
    then BTC falls until IM% is above 100."""
    sim.reset(equity="1000")
    market_order(gateway, "BTCUSDT", Side.BUY, "0.080", "97000", "t-btc")
    market_order(gateway, "SOLUSDT", Side.BUY, "0.4", "180", "t-sol")
    market_order(gateway, "ETHUSDT", Side.SELL, "0.50", "3300", "t-eth")
    redis_db.sadd(keys.PM_SYMBOLS, "ETHUSDT")
    sim.set_price("BTCUSDT", "96000.00")
    return gateway


def test_above_the_reduce_level_every_non_portfolio_position_is_cut_by_20_percent(sim, overloaded, alerts):
    result = im_watch_step(gateway=overloaded, now=NOW)

    assert result.action == "reduce" and result.im_pct >= Decimal("100")
    assert sorted(result.reduced) == ["BTCUSDT", "SOLUSDT"] and result.failed == []
    assert result.run_key == "im-20250310T120000"
    # BTC 0.080 x 0.20 = 0.016; SOL 0.4 x 0.20 = 0.08 is below the 0.1 minimum: closed whole.
    assert sizes(sim) == {"BTCUSDT": Decimal("0.064"), "ETHUSDT": Decimal("0.50")}
    orders = {o["symbol"]: o for o in reduce_orders(sim)}
    assert set(orders) == {"BTCUSDT", "SOLUSDT"}
    assert (orders["BTCUSDT"]["side"], Decimal(orders["BTCUSDT"]["qty"])) == ("Sell", Decimal("0.016"))
    assert all(o["reduceOnly"] is True and o["orderType"] == "Market" for o in orders.values())
    journal = {d.symbol: d for d in Decision.objects.filter(action="reduce")}
    assert journal["BTCUSDT"].details["qty"] == "0.016" and not journal["BTCUSDT"].details["whole_position"]
    assert journal["SOLUSDT"].details["whole_position"] is True
    assert journal["BTCUSDT"].order_link_id == orders["BTCUSDT"]["orderLinkId"]
    assert journal["BTCUSDT"].order_link_id.startswith("risk-reduce-BTC-")
    [alert] = alerts.sent
    assert "reducing exposure by 20 %" in alert.text and "BTCUSDT long: -0.016 of 0.080" in alert.text


def test_a_second_reduction_waits_for_the_cooldown(sim, overloaded, redis_db):
    im_watch_step(gateway=overloaded, now=NOW)
    sim.set_price("BTCUSDT", "93000.00")  # still above 100 % after the first cut

    waiting = im_watch_step(gateway=overloaded, now=NOW + timedelta(seconds=5))

    assert waiting.action == "reduce" and waiting.cooldown and waiting.reduced == []
    assert sizes(sim)["BTCUSDT"] == Decimal("0.064") and len(reduce_orders(sim)) == 2
    assert 0 < redis_db.ttl(keys.RISK_IM_REDUCE) <= 300
    assert redis_db.get(keys.RISK_IM_REDUCE) == "im-20250310T120000"

    redis_db.delete(keys.RISK_IM_REDUCE)  # the cooldown has passed
    later = im_watch_step(gateway=overloaded, now=NOW + timedelta(minutes=5, seconds=1))

    assert later.reduced == ["BTCUSDT"] and later.run_key == "im-20250310T120501"
    assert sizes(sim)["BTCUSDT"] == Decimal("0.052")  # 0.064 x 0.20 = 0.0128, rounded down to 0.012
    links = [d.order_link_id for d in Decision.objects.filter(action="reduce", symbol="BTCUSDT")]
    assert len(set(links)) == 2  # each run its own orderLinkId


def test_a_reduction_that_placed_nothing_gives_the_cooldown_back_early(sim, overloaded, redis_db):
    sim.fault("/v5/order/create", mode="error", retCode=10001, count=2, retMsg="params error")

    failed = im_watch_step(gateway=overloaded, now=NOW)

    assert sorted(failed.failed) == ["BTCUSDT", "SOLUSDT"] and failed.reduced == []
    assert 0 < redis_db.ttl(keys.RISK_IM_REDUCE) <= im_watch.IM_REDUCE_FAILED_RETRY_S
    assert Decision.objects.filter(action="reduce", outcome="failed").count() == 2


def test_with_only_pm_positions_holding_the_margin_it_alerts_who_holds_it_every_cooldown_and_closes_nothing(
    sim, gateway, redis_db, alerts
):
    sim.reset(equity="1000")
    market_order(gateway, "BTCUSDT", Side.BUY, "0.080", "97000", "t-btc")
    market_order(gateway, "ETHUSDT", Side.SELL, "0.50", "3300", "t-eth")
    redis_db.sadd(keys.PM_SYMBOLS, "BTCUSDT", "ETHUSDT")  # both the portfolio's
    sim.set_price("BTCUSDT", "96000.00")
    before = sizes(sim)

    first = im_watch_step(gateway=gateway, now=NOW)
    waiting = im_watch_step(gateway=gateway, now=NOW + timedelta(seconds=5))

    assert first.action == "reduce" and first.im_pct >= Decimal("100")
    assert first.reduced == [] and first.failed == [] and first.run_key == "im-20250310T120000"
    assert waiting.cooldown and not waiting.warned
    [alert] = alerts.sent
    im = {row["symbol"]: Decimal(row["positionIM"]) for row in sim.state()["positions"]}
    assert im["BTCUSDT"] > im["ETHUSDT"] > 0
    assert "no position of ours is left to cut" in alert.text and "nothing was closed" in alert.text
    lines = alert.text.splitlines()
    btc, eth = (
        lines.index(f"BTCUSDT long 0.080 (PM): IM {im['BTCUSDT']} USDT"),
        lines.index(f"ETHUSDT short 0.50 (PM): IM {im['ETHUSDT']} USDT"),
    )
    assert btc < eth  # the biggest margin first
    journal = Decision.objects.get(action="reduce")
    assert (journal.outcome, journal.reason_code) == ("skipped", "no_reducible_positions")
    assert [row["owner"] for row in journal.details["margin_holders"]] == ["PM", "PM"]

    redis_db.delete(keys.RISK_IM_REDUCE, keys.RISK_IM_WARN)  # the cooldown has passed
    again = im_watch_step(gateway=gateway, now=NOW + timedelta(minutes=5, seconds=1))

    assert again.run_key == "im-20250310T120501" and len(alerts.sent) == 2
    assert alerts.sent[1].text.startswith(
        f"IM {again.im_pct.quantize(Decimal('0.01'))} % is above the reduce"
    )
    assert reduce_orders(sim) == [] and sizes(sim) == before  # nothing of the portfolio's closed
