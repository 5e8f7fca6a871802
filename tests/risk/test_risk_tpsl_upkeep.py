"""tpsl_upkeep_step against the simulator: TP/SL set on the right side at the right prices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core import keys
from risk.tpsl import tpsl_upkeep_step
from tests.support.sim import market_order, sim_positions
from trading.models import Coin, Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def coin(symbol: str, *, take_profit_pct: str, stop_loss_pct: str, leverage: int = 10) -> Coin:
    return Coin.objects.create(
        symbol=symbol,
        long_offset_pct=Decimal("1"),
        short_offset_pct=Decimal("1"),
        min_liquidation_usdt=Decimal("1000"),
        order_size_usdt=Decimal("50"),
        leverage=leverage,
        take_profit_pct=Decimal(take_profit_pct),
        stop_loss_pct=Decimal(stop_loss_pct),
    )


def tpsl(row) -> tuple[Decimal | None, Decimal | None]:
    """A position row's TP and SL as numbers; Bybit shows "" or "0" when one is not set."""
    return tuple(
        Decimal(row[name]) if row[name] not in ("", None) and Decimal(row[name]) else None
        for name in ("takeProfit", "stopLoss")
    )


def protective_orders(gateway):
    """Open TP/SL orders on the venue: (symbol, kind, trigger price, side)."""
    return {
        (o.symbol, o.stop_order_type, o.trigger_price, o.side.value)
        for o in gateway.open_orders()
        if o.stop_order_type in ("TakeProfit", "StopLoss")
    }


def protective_order_ids(gateway):
    return {o.order_id for o in gateway.open_orders() if o.stop_order_type}


@pytest.fixture
def book(sim, gateway, redis_db):
    """BTC long and ETH short (configured), SOL long (configured, but the portfolio's), XRP long (no coin)."""
    coin("BTCUSDT", take_profit_pct="1.5", stop_loss_pct="0.8")
    coin("ETHUSDT", take_profit_pct="2", stop_loss_pct="1")
    coin("SOLUSDT", take_profit_pct="3", stop_loss_pct="2")
    redis_db.sadd(keys.PM_SYMBOLS, "SOLUSDT")
    market_order(gateway, "BTCUSDT", Side.BUY, "0.010", "97000", "t-btc")
    market_order(gateway, "ETHUSDT", Side.SELL, "0.50", "3300", "t-eth")
    market_order(gateway, "SOLUSDT", Side.BUY, "2.0", "180", "t-sol")
    market_order(gateway, "XRPUSDT", Side.BUY, "100", "2.5", "t-xrp")
    return gateway


def test_positions_without_tpsl_get_them_at_the_right_prices_on_the_right_side(sim, book):
    result = tpsl_upkeep_step(gateway=book, now=NOW)

    assert sorted(result.set) == ["BTCUSDT", "ETHUSDT"]
    assert result.skipped_pm == ["SOLUSDT"] and result.skipped_unconfigured == ["XRPUSDT"]
    rows = sim_positions(sim)
    # BTC long filled at 97009.70: TP 97009.70 * 1.015 = 98464.8455 down, SL * 0.992 = 96233.6224 up.
    assert rows["BTCUSDT"]["avgPrice"] == "97009.7"
    assert tpsl(rows["BTCUSDT"]) == (Decimal("98464.8"), Decimal("96233.7"))
    assert rows["BTCUSDT"]["tpslMode"] == "Full"
    # ETH short filled at 3299.67: TP * 0.98 = 3233.6766 up, SL * 1.01 = 3332.6667 down.
    assert rows["ETHUSDT"]["avgPrice"] == "3299.67"
    assert tpsl(rows["ETHUSDT"]) == (Decimal("3233.68"), Decimal("3332.66"))
    # The venue's conditional closes sit on the closing side: Sell for the long, Buy for the short.
    assert protective_orders(book) == {
        ("BTCUSDT", "TakeProfit", Decimal("98464.8"), "Sell"),
        ("BTCUSDT", "StopLoss", Decimal("96233.7"), "Sell"),
        ("ETHUSDT", "TakeProfit", Decimal("3233.68"), "Buy"),
        ("ETHUSDT", "StopLoss", Decimal("3332.66"), "Buy"),
    }
    journal = {d.symbol: d for d in Decision.objects.filter(strategy="risk", action="set_tpsl")}
    assert set(journal) == {"BTCUSDT", "ETHUSDT"}
    assert (journal["BTCUSDT"].outcome, journal["BTCUSDT"].reason_code) == ("taken", "missing")
    assert journal["BTCUSDT"].details["take_profit"] == "98464.80"
    assert journal["BTCUSDT"].details["stop_loss"] == "96233.70"
    assert journal["ETHUSDT"].details["side"] == "short"


def test_portfolio_and_unconfigured_positions_are_left_alone(sim, book):
    tpsl_upkeep_step(gateway=book, now=NOW)

    rows = sim_positions(sim)
    for symbol in ("SOLUSDT", "XRPUSDT"):
        assert tpsl(rows[symbol]) == (None, None)
    assert not {o for o in protective_orders(book) if o[0] in ("SOLUSDT", "XRPUSDT")}
    assert not Decision.objects.filter(symbol__in=["SOLUSDT", "XRPUSDT"]).exists()


def test_a_position_with_the_right_tpsl_is_not_touched(sim, book):
    tpsl_upkeep_step(gateway=book, now=NOW)
    orders_before = protective_order_ids(book)
    requests_before = len(sim.state()["orders"])

    result = tpsl_upkeep_step(gateway=book, now=NOW)

    assert result.set == [] and sorted(result.unchanged) == ["BTCUSDT", "ETHUSDT"]
    assert protective_order_ids(book) == orders_before
    assert len(sim.state()["orders"]) == requests_before
    assert Decision.objects.filter(action="set_tpsl").count() == 2


def test_a_level_one_tick_off_is_kept_and_a_wrong_one_is_corrected(sim, book):
    # One tick off (another rounding of the same level): kept. A stop 1 % away instead of 0.8 %: corrected.
    book.set_trading_stop(
        symbol="BTCUSDT", position_side=Side.BUY, take_profit=Decimal("98464.7"), stop_loss=Decimal("96039.6")
    )
    book.set_trading_stop(
        symbol="ETHUSDT",
        position_side=Side.SELL,
        take_profit=Decimal("3233.69"),
        stop_loss=Decimal("3332.65"),
    )

    result = tpsl_upkeep_step(gateway=book, now=NOW)

    assert result.set == ["BTCUSDT"] and result.unchanged == ["ETHUSDT"]
    rows = sim_positions(sim)
    assert tpsl(rows["BTCUSDT"]) == (Decimal("98464.8"), Decimal("96233.7"))
    assert tpsl(rows["ETHUSDT"]) == (Decimal("3233.69"), Decimal("3332.65"))
    assert Decision.objects.get(action="set_tpsl").reason_code == "corrected"


def test_the_tpsl_follow_the_average_price_when_the_position_grows(sim, book):
    tpsl_upkeep_step(gateway=book, now=NOW)
    sim.set_price("BTCUSDT", "96500.00")  # still above the 96233.70 stop
    market_order(book, "BTCUSDT", Side.BUY, "0.010", "96500", "t-btc-add")

    result = tpsl_upkeep_step(gateway=book, now=NOW)

    assert result.set == ["BTCUSDT"]
    row = sim_positions(sim)["BTCUSDT"]
    # 0.010 at 97009.70 + 0.010 at 96509.70 -> 96759.70: TP 98211.0955 down, SL 95985.6224 up.
    assert (Decimal(row["size"]), Decimal(row["avgPrice"])) == (Decimal("0.020"), Decimal("96759.7"))
    assert tpsl(row) == (Decimal("98211.0"), Decimal("95985.7"))
    # Full mode: one TP and one SL, each covering the whole 0.020.
    assert {o for o in protective_orders(book) if o[0] == "BTCUSDT"} == {
        ("BTCUSDT", "TakeProfit", Decimal("98211.0"), "Sell"),
        ("BTCUSDT", "StopLoss", Decimal("95985.7"), "Sell"),
    }


def test_a_position_already_past_its_stop_is_closed_reduce_only(sim, book):
    sim.set_price("BTCUSDT", "96000.00")  # below the 96233.70 stop the long should carry

    result = tpsl_upkeep_step(gateway=book, now=NOW)

    assert result.closed == ["BTCUSDT"] and result.set == ["ETHUSDT"]
    assert "BTCUSDT" not in sim_positions(sim)
    close = Decision.objects.get(action="close")
    assert (close.strategy, close.symbol, close.reason_code) == ("risk", "BTCUSDT", "stop_loss_crossed")
    order = next(o for o in sim.state()["orders"] if o["orderLinkId"] == close.order_link_id)
    assert order["side"] == "Sell" and order["reduceOnly"] is True
    assert close.order_link_id.startswith("risk-close-BTC-")


def test_a_venue_refusal_is_journaled_once_and_the_other_positions_are_still_done(sim, book):
    sim.fault("/v5/position/trading-stop", mode="error", retCode=10001, count=1, retMsg="params error")

    result = tpsl_upkeep_step(gateway=book, now=NOW)
    assert len(result.failed) == 1 and len(result.set) == 1
    failed = Decision.objects.get(action="set_tpsl", outcome="failed")
    assert failed.details["code"] == 10001

    sim.fault("/v5/position/trading-stop", mode="error", retCode=10001, count=1, retMsg="params error")
    # The failing symbol is retried on the next pass; the same failure is not journaled again.
    result = tpsl_upkeep_step(gateway=book, now=NOW)
    assert result.failed == [failed.symbol]
    assert Decision.objects.filter(action="set_tpsl", outcome="failed").count() == 1


def test_an_unreadable_account_raises_for_the_task_to_retry(sim, book):
    from trading.errors import RetryableError

    sim.fault("/v5/position/list", mode="error", retCode=10016, count=1)
    with pytest.raises(RetryableError):
        tpsl_upkeep_step(gateway=book, now=NOW)


def protective_order_id(gateway, symbol: str, kind: str) -> str:
    [order_id] = [
        o.order_id for o in gateway.open_orders() if o.symbol == symbol and o.stop_order_type == kind
    ]
    return order_id


def filled_qty(gateway, symbol: str, order_id: str) -> Decimal:
    """What one order filled, from the account's executions (a Full-mode TP/SL takes the
    position's size when it fires)."""
    return sum(
        (e.exec_qty for e in gateway.executions(symbol=symbol) if e.order_id == order_id), Decimal("0")
    )


def test_after_the_im_reduction_cuts_a_position_its_stop_closes_exactly_what_is_left(sim, gateway, redis_db):
    from risk.im_watch import im_watch_step

    coin("BTCUSDT", take_profit_pct="1.5", stop_loss_pct="5")
    sim.reset(equity="1000")
    market_order(gateway, "BTCUSDT", Side.BUY, "0.080", "97000", "t-btc")
    market_order(gateway, "ETHUSDT", Side.SELL, "0.50", "3300", "t-eth")
    redis_db.sadd(keys.PM_SYMBOLS, "ETHUSDT")
    assert tpsl_upkeep_step(gateway=gateway, now=NOW).set == ["BTCUSDT"]
    sim.set_price("BTCUSDT", "96000.00")  # IM above 100 %

    reduced = im_watch_step(gateway=gateway, now=NOW)
    upkeep = tpsl_upkeep_step(gateway=gateway, now=NOW)

    assert reduced.reduced == ["BTCUSDT"]
    row = sim_positions(sim)["BTCUSDT"]
    assert Decimal(row["size"]) == Decimal("0.064")  # 0.080 less 20 %
    # The entry price is unchanged, so are the levels; Full mode sizes them to what is left.
    assert upkeep.unchanged == ["BTCUSDT"] and tpsl(row) == (Decimal("98464.8"), Decimal("92159.3"))
    assert {o[1] for o in protective_orders(gateway) if o[0] == "BTCUSDT"} == {"TakeProfit", "StopLoss"}

    stop = protective_order_id(gateway, "BTCUSDT", "StopLoss")
    sim.set_price("BTCUSDT", "92000.00")  # through the stop

    assert "BTCUSDT" not in sim_positions(sim)  # closed, not flipped short
    assert filled_qty(gateway, "BTCUSDT", stop) == Decimal("0.064")


def test_after_a_manual_partial_close_the_take_profit_closes_exactly_what_is_left(sim, book):
    tpsl_upkeep_step(gateway=book, now=NOW)
    book.place_order(  # 0.004 of the 0.010 closed by hand
        symbol="BTCUSDT", side=Side.SELL, qty=Decimal("0.004"), order_link_id="t-hand", reduce_only=True
    )

    result = tpsl_upkeep_step(gateway=book, now=NOW)

    row = sim_positions(sim)["BTCUSDT"]
    assert Decimal(row["size"]) == Decimal("0.006") and "BTCUSDT" in result.unchanged
    assert tpsl(row) == (Decimal("98464.8"), Decimal("96233.7"))

    take_profit = protective_order_id(book, "BTCUSDT", "TakeProfit")
    sim.set_price("BTCUSDT", "98500.00")  # through the take-profit

    assert "BTCUSDT" not in sim_positions(sim)
    assert filled_qty(book, "BTCUSDT", take_profit) == Decimal("0.006")


def test_after_a_pyramid_add_the_stop_closes_the_whole_grown_position(sim, book):
    tpsl_upkeep_step(gateway=book, now=NOW)
    sim.set_price("BTCUSDT", "96500.00")
    market_order(book, "BTCUSDT", Side.BUY, "0.010", "96500", "t-btc-add")
    tpsl_upkeep_step(gateway=book, now=NOW)  # repriced on the new average (see above)

    stop = protective_order_id(book, "BTCUSDT", "StopLoss")
    sim.set_price("BTCUSDT", "95900.00")  # through the 95985.70 stop

    assert "BTCUSDT" not in sim_positions(sim)
    assert filled_qty(book, "BTCUSDT", stop) == Decimal("0.020")
