"""Every gateway call against the running simulator, through the real pybit client."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pybit.unified_trading import HTTP

from trading.bybit import OrderRequest, OrderType, PositionMode, TimeInForce
from trading.bybit import market as market_module
from trading.errors import (
    BadRequest,
    DuplicateOrderLinkId,
    InsufficientBalance,
    OrderRefused,
    OrderTooSmall,
    ReduceOnlyRejected,
    UnknownInstrument,
)
from trading.rules import Side
from trading.rules.order_link_id import order_link_id
from trading.rules.rounding import round_stop_loss, round_take_profit

pytestmark = pytest.mark.integration
D = Decimal


def link(key: str, leg: str = "entry") -> str:
    return order_link_id(strategy="test", symbol="BTCUSDT", decision_key=key, leg=leg)


def open_long(gateway, key="long", qty="0.010", price="97000"):
    return gateway.place_order(
        symbol="BTCUSDT", side=Side.BUY, qty=D(qty), order_link_id=link(key), reference_price=D(price)
    )


# -- market data and account ------------------------------------------------------


def test_server_time_is_now(gateway):
    assert abs(gateway.server_time() - datetime.now(UTC)) < timedelta(seconds=2)


def test_it_loads_every_instrument_following_the_cursor(new_gateway, monkeypatch):
    monkeypatch.setattr(market_module, "INSTRUMENTS_PAGE_LIMIT", 3)
    gateway = new_gateway()
    instruments = gateway.fetch_instruments()
    symbols = [instrument.symbol for instrument in instruments]
    assert len(symbols) == len(set(symbols)) > 3
    assert {"BTCUSDT", "ETHUSDT", "SOLUSDT"} <= set(symbols)
    btc = gateway.instrument("BTCUSDT")
    assert (btc.qty_step, btc.min_order_qty, btc.tick_size) == (D("0.001"), D("0.001"), D("0.10"))
    assert btc.min_notional_value == D("5") and btc.is_trading
    assert not gateway.instruments.is_stale()
    with pytest.raises(UnknownInstrument):
        gateway.instrument("NOPEUSDT")


def test_it_reads_tickers_klines_and_trades(gateway):
    (ticker,) = gateway.tickers(symbol="BTCUSDT")
    assert ticker.last_price == D("97000.00")
    assert ticker.bid1_price < ticker.last_price < ticker.ask1_price
    assert len(gateway.tickers()) == len(gateway.instruments)
    candles = gateway.klines(symbol="BTCUSDT", interval="1", limit=5)
    assert len(candles) == 5
    assert [candle.start for candle in candles] == sorted(candle.start for candle in candles)  # oldest first
    assert candles[-1].close == D("97000.00")
    trades = gateway.recent_trades(symbol="BTCUSDT", limit=3)
    assert 1 <= len(trades) <= 3 and trades[0].symbol == "BTCUSDT"


def test_a_fresh_account_has_equity_and_no_margin_in_use(gateway):
    wallet = gateway.wallet()
    assert wallet.total_equity == D("10000")
    assert wallet.total_available_balance == D("10000")
    assert wallet.total_initial_margin == 0 and wallet.im_pct == 0
    assert gateway.positions() == [] and gateway.open_orders() == []


def test_it_detects_one_way_mode(new_gateway):
    assert new_gateway().position_mode() is PositionMode.ONE_WAY


# -- orders -------------------------------------------------------------------------


def test_a_market_entry_opens_a_position_the_wallet_margins(gateway, sim):
    ack = open_long(gateway)
    assert ack.order_link_id == link("long") and ack.order_id and not ack.recovered
    (position,) = gateway.positions()
    assert (position.symbol, position.side, position.size, position.position_idx) == (
        "BTCUSDT",
        Side.BUY,
        D("0.010"),
        0,
    )
    wallet = gateway.wallet()
    assert wallet.total_initial_margin == position.position_im > 0
    assert wallet.im_pct == wallet.account_im_rate * 100 == D("0.97")  # Bybit's 4 decimals: 0.0097
    order = gateway.get_order(order_link_id=ack.order_link_id)
    assert order.order_id == ack.order_id and order.status == "Filled" and order.cum_exec_qty == D("0.010")
    assert [entry["orderLinkId"] for entry in sim.state()["orders"]] == [ack.order_link_id]


def test_a_limit_order_rests_is_found_and_cancelled_once(gateway):
    ack = gateway.place_order(
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=D("0.002"),
        order_type=OrderType.LIMIT,
        price=D("90000.00"),
        time_in_force=TimeInForce.GTC,
        order_link_id=link("rest"),
    )
    (resting,) = gateway.open_orders()
    assert resting.order_id == ack.order_id and resting.is_open and resting.price == D("90000.00")
    assert gateway.open_orders(symbol="ETHUSDT") == []
    assert gateway.cancel_order(symbol="BTCUSDT", order_link_id=ack.order_link_id) is True
    assert gateway.cancel_order(symbol="BTCUSDT", order_link_id=ack.order_link_id) is False  # already gone
    assert gateway.cancel_order(symbol="BTCUSDT", order_id="no-such-order") is False
    assert gateway.open_orders() == []
    cancelled = gateway.get_order(order_link_id=ack.order_link_id, symbol="BTCUSDT")
    assert cancelled is not None and cancelled.status == "Cancelled" and not cancelled.is_open


def test_cancel_all_cancels_everything_once(gateway):
    for index, price in enumerate(("90000.00", "91000.00")):
        gateway.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=D("0.002"),
            order_type=OrderType.LIMIT,
            price=D(price),
            order_link_id=link(f"all-{index}"),
        )
    gateway.place_order(
        symbol="ETHUSDT",
        side=Side.SELL,
        qty=D("0.10"),
        order_type=OrderType.LIMIT,
        price=D("3500.00"),
        order_link_id=link("all-eth"),
    )
    cancelled = gateway.cancel_all_orders()
    assert {ref.order_link_id for ref in cancelled} == {link("all-0"), link("all-1"), link("all-eth")}
    assert gateway.cancel_all_orders() == []
    assert gateway.open_orders() == []


def test_an_unknown_order_link_id_is_absent(gateway):
    assert gateway.get_order(order_link_id=link("never-sent")) is None


def test_the_same_order_link_id_returns_the_existing_order(gateway, sim):
    first = open_long(gateway, key="twice")
    again = open_long(gateway, key="twice")
    assert again.order_id == first.order_id and again.recovered
    assert gateway.positions()[0].size == D("0.010")  # one fill, not two
    with pytest.raises(DuplicateOrderLinkId):
        open_long(gateway, key="twice", qty="0.020")  # same id, different order: a bug upstream


def test_it_refuses_orders_below_the_minimums_before_sending(gateway, sim):
    with pytest.raises(OrderTooSmall) as below_qty:
        open_long(gateway, key="dust", qty="0.0005")
    assert below_qty.value.reason == "below_min_qty"
    with pytest.raises(OrderTooSmall) as below_notional:
        gateway.place_order(
            symbol="SOLUSDT", side=Side.BUY, qty=D("0.1"), order_link_id=link("tiny"), reference_price=D("30")
        )
    assert below_notional.value.reason == "below_min_notional"
    with pytest.raises(OrderRefused) as off_step:
        open_long(gateway, key="offstep", qty="0.0015")
    assert off_step.value.reason == "qty_off_step"
    with pytest.raises(OrderRefused) as off_tick:
        gateway.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=D("0.002"),
            order_type=OrderType.LIMIT,
            price=D("90000.05"),
            order_link_id=link("offtick"),
        )
    assert off_tick.value.reason == "price_off_tick"
    with pytest.raises(ValueError):
        gateway.place_order(symbol="BTCUSDT", side=Side.BUY, qty=D("0.002"), order_link_id=link("noref"))
    assert sim.state()["orders"] == []  # nothing reached the venue


def test_the_venue_refuses_an_order_the_wallet_cannot_margin(gateway):
    with pytest.raises(InsufficientBalance) as refused:
        open_long(gateway, key="huge", qty="100.000")
    assert refused.value.code == 110007


def test_a_wrong_side_reduce_only_order_is_refused_with_110017(gateway):
    with pytest.raises(ReduceOnlyRejected) as flat:
        gateway.place_order(
            symbol="BTCUSDT", side=Side.SELL, qty=D("0.010"), reduce_only=True, order_link_id=link("ro-flat")
        )
    assert flat.value.code == 110017
    open_long(gateway)
    with pytest.raises(ReduceOnlyRejected):
        # A Buy can't reduce a long: the mistake close_position exists to prevent.
        gateway.place_order(
            symbol="BTCUSDT", side=Side.BUY, qty=D("0.010"), reduce_only=True, order_link_id=link("ro-same")
        )
    assert gateway.positions()[0].size == D("0.010")


@pytest.mark.parametrize(
    ("side", "symbol", "qty", "price"),
    [
        (Side.BUY, "BTCUSDT", "0.013", "97000"),
        (Side.SELL, "BTCUSDT", "0.013", "97000"),
        (Side.SELL, "ETHUSDT", "0.37", "3300"),
    ],
)
def test_close_position_flattens_longs_and_shorts(gateway, sim, side, symbol, qty, price):
    gateway.place_order(
        symbol=symbol, side=side, qty=D(qty), order_link_id=link(f"open-{side}"), reference_price=D(price)
    )
    (position,) = gateway.positions()
    assert position.side is side and position.size == D(qty)
    ack = gateway.close_position(position=position, order_link_id=link(f"close-{side}", leg="close"))
    assert gateway.positions() == []
    closing = gateway.get_order(order_link_id=ack.order_link_id)
    assert closing.side is side.opposite and closing.reduce_only and closing.qty == D(qty)
    assert sim.state()["positions"] == []


def test_take_profit_and_stop_loss_ride_on_an_entry(gateway):
    ack = gateway.place_order(
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=D("0.010"),
        order_link_id=link("tpsl-entry"),
        reference_price=D("97000"),
        take_profit=D("99000.00"),
        stop_loss=D("95000.00"),
    )
    order = gateway.get_order(order_link_id=ack.order_link_id)
    assert (order.take_profit, order.stop_loss) == (D("99000.00"), D("95000.00"))
    (position,) = gateway.positions()
    assert (position.take_profit, position.stop_loss) == (D("99000.00"), D("95000.00"))


def test_trading_stop_sets_full_tp_sl_and_treats_not_modified_as_done(gateway):
    open_long(gateway)
    tick = gateway.instrument("BTCUSDT").tick_size
    take_profit = round_take_profit(D("99123.456"), tick, position_side=Side.BUY)
    stop_loss = round_stop_loss(D("95123.456"), tick, position_side=Side.BUY)
    assert (take_profit, stop_loss) == (D("99123.40"), D("95123.50"))
    assert (
        gateway.set_trading_stop(
            symbol="BTCUSDT", position_side=Side.BUY, take_profit=take_profit, stop_loss=stop_loss
        )
        is True
    )
    (position,) = gateway.positions()
    assert (position.take_profit, position.stop_loss) == (take_profit, stop_loss)
    # 34040 "not modified" with the position already showing these values: done.
    assert (
        gateway.set_trading_stop(
            symbol="BTCUSDT", position_side=Side.BUY, take_profit=take_profit, stop_loss=stop_loss
        )
        is False
    )
    assert gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.BUY, stop_loss=D("96000.00")) is True
    assert gateway.positions()[0].stop_loss == D("96000.00")


def test_a_trailing_stop_is_set_by_price_distance_and_survives_a_tp_sl_call(gateway, sim):
    open_long(gateway)
    assert gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.BUY, trailing_stop=D("1500.00"))
    (position,) = gateway.positions()
    assert position.trailing_stop == D("1500.00")
    # 34040 with the position already showing it: done, not an error.
    assert (
        gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.BUY, trailing_stop=D("1500.00"))
        is False
    )
    assert gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.BUY, stop_loss=D("90000.00"))
    (position,) = gateway.positions()
    assert (position.stop_loss, position.trailing_stop) == (D("90000.00"), D("1500.00"))
    assert gateway.set_trading_stop(
        symbol="BTCUSDT", position_side=Side.BUY, trailing_stop=D("500.00"), active_price=D("99000.00")
    )
    (position,) = gateway.positions()
    assert position.trailing_stop == D("500.00")
    with pytest.raises(ValueError):
        gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.BUY, active_price=D("99000.00"))


def test_trading_stop_on_a_flat_symbol_is_a_bad_request(gateway):
    with pytest.raises(BadRequest):
        gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.BUY, stop_loss=D("95000.00"))


def test_set_leverage_treats_unchanged_as_done(gateway):
    assert gateway.set_leverage(symbol="BTCUSDT", leverage=D("5")) is True
    assert gateway.set_leverage(symbol="BTCUSDT", leverage=D("5")) is False
    open_long(gateway)
    assert gateway.positions()[0].leverage == D("5")


def test_a_batch_places_each_order_and_reports_each_refusal(gateway, sim):
    requests = [
        OrderRequest(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=D("0.002"),
            order_link_id=link("batch-0"),
            order_type=OrderType.LIMIT,
            price=D("90000.00"),
        ),
        OrderRequest(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=D("0.0001"),
            order_link_id=link("batch-1"),
            reference_price=D("97000"),
        ),
        OrderRequest(
            symbol="ETHUSDT",
            side=Side.SELL,
            qty=D("0.10"),
            order_link_id=link("batch-2"),
            order_type=OrderType.LIMIT,
            price=D("3500.00"),
        ),
        OrderRequest(
            symbol="ETHUSDT", side=Side.SELL, qty=D("0.10"), order_link_id=link("batch-3"), reduce_only=True
        ),
    ]
    results = gateway.place_orders_batch(orders=requests)
    assert [result.order_link_id for result in results] == [request.order_link_id for request in requests]
    assert [result.ok for result in results] == [True, False, True, False]
    assert isinstance(results[1].error, OrderTooSmall)  # ours, never sent
    assert isinstance(results[3].error, ReduceOnlyRejected)  # the venue's, per item
    assert {order.order_link_id for order in gateway.open_orders()} == {link("batch-0"), link("batch-2")}
    # Sent again (a retry after a crash, say): the placed ones come back as the existing orders.
    again = gateway.place_orders_batch(orders=[requests[0], requests[2]])
    assert [result.ack.order_id for result in again] == [results[0].ack.order_id, results[2].ack.order_id]
    assert all(result.ack.recovered for result in again)
    assert len(gateway.open_orders()) == 2


def test_a_batch_larger_than_twenty_is_sent_in_chunks(new_gateway):
    gateway = new_gateway()
    requests = [
        OrderRequest(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=D("0.001"),
            order_link_id=link(f"chunk-{index}"),
            order_type=OrderType.LIMIT,
            price=D("80000.00") + index,
        )
        for index in range(22)
    ]
    results = gateway.place_orders_batch(orders=requests)
    # The default tier allows 10 batch orders a second: the rest fail alone with 10006.
    placed = [result for result in results if result.ok]
    assert len(placed) == 10
    assert {result.error.code for result in results if not result.ok} == {10006}
    assert len(gateway.open_orders()) == 10


def test_executions_and_closed_pnl_after_a_round_trip(gateway, sim):
    open_long(gateway)
    sim.set_price("BTCUSDT", "98000.00")
    (position,) = gateway.positions()
    gateway.close_position(position=position, order_link_id=link("rt-close", leg="close"))
    fills = gateway.executions(symbol="BTCUSDT")
    assert {fill.order_link_id for fill in fills} == {link("long"), link("rt-close", leg="close")}
    assert all(fill.exec_fee > 0 and fill.exec_time is not None for fill in fills)
    (closed,) = gateway.closed_pnl(symbol="BTCUSDT")
    assert closed.closed_size == D("0.010") and closed.closed_pnl > 0
    assert closed.avg_entry_price == position.avg_price


def test_order_history_lists_the_orders_of_a_time_range_every_page(gateway):
    start = datetime.now(UTC) - timedelta(seconds=5)
    links = [open_long(gateway, key=f"history-{n}", qty="0.001").order_link_id for n in range(3)]
    history = gateway.order_history(start=start, max_pages=None)
    assert {order.order_link_id for order in history} >= set(links)
    assert all(order.status == "Filled" and order.symbol == "BTCUSDT" for order in history)
    assert gateway.order_history(start=start - timedelta(hours=1), end=start) == []


def test_set_dcp_window_sets_the_derivatives_window(gateway, sim):
    sim.configure(dcp_enabled=True)
    gateway.set_dcp_window(seconds=15)
    assert sim.state()["dcp"]["window"] == 15
    with pytest.raises(ValueError):
        gateway.set_dcp_window(seconds=2)


def test_hedge_mode_is_detected_and_both_sides_close(sim, new_gateway):
    # Switch the account's mode the way a user would, outside the gateway.
    session = HTTP(api_key=sim.api_key, api_secret=sim.api_secret)
    session.endpoint = sim.base_url
    session.switch_position_mode(category="linear", coin="USDT", mode=3)
    try:
        gateway = new_gateway()
        gateway.prepare()
        assert gateway.position_mode() is PositionMode.HEDGE
        for side in (Side.BUY, Side.SELL):
            gateway.place_order(
                symbol="BTCUSDT",
                side=side,
                qty=D("0.005"),
                order_link_id=link(f"hedge-{side}"),
                reference_price=D("97000"),
            )
        positions = {position.side: position for position in gateway.positions()}
        assert {side: position.position_idx for side, position in positions.items()} == {
            Side.BUY: 1,
            Side.SELL: 2,
        }
        assert gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.SELL, stop_loss=D("99000.00"))
        for side, position in positions.items():
            gateway.close_position(position=position, order_link_id=link(f"hedge-close-{side}", leg="close"))
        assert gateway.positions() == []
    finally:
        session.switch_position_mode(category="linear", coin="USDT", mode=0)


def test_state_after_a_session_matches_what_the_gateway_reports(gateway, sim):
    open_long(gateway, qty="0.020")
    gateway.place_order(
        symbol="ETHUSDT",
        side=Side.SELL,
        qty=D("0.50"),
        order_link_id=link("eth-short"),
        reference_price=D("3300"),
    )
    sim.set_price("BTCUSDT", "96500.00")
    (btc,) = gateway.positions(symbol="BTCUSDT")
    gateway.place_order(
        symbol="BTCUSDT",
        side=Side.SELL,
        qty=D("0.005"),
        reduce_only=True,
        order_link_id=link("trim"),
    )
    gateway.place_order(
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=D("1.0"),
        order_type=OrderType.LIMIT,
        price=D("150.000"),
        order_link_id=link("sol-bid"),
    )
    state = sim.state()
    reported = {(p.symbol, p.side.value, p.size, p.avg_price, p.position_idx) for p in gateway.positions()}
    expected = {
        (row["symbol"], row["side"], D(row["size"]), D(row["avgPrice"]), row["positionIdx"])
        for row in state["positions"]
    }
    assert reported == expected
    assert {(symbol, size) for symbol, _, size, _, _ in reported} == {
        ("BTCUSDT", btc.size - D("0.005")),
        ("ETHUSDT", D("0.50")),
    }
    wallet = gateway.wallet()
    venue = state["wallet"]
    assert wallet.total_equity == D(venue["totalEquity"])
    assert wallet.total_wallet_balance == D(venue["totalWalletBalance"])
    assert wallet.total_initial_margin == D(venue["totalInitialMargin"])
    assert wallet.total_available_balance == D(venue["totalAvailableBalance"])
    assert abs(wallet.im_pct - D(venue["accountIMRate"]) * 100) < D("0.01")
    open_ids = {order.order_link_id for order in gateway.open_orders()}
    assert open_ids == {
        row["orderLinkId"] for row in state["orders"] if row["orderStatus"] in ("New", "PartiallyFilled")
    }


def test_one_gateway_serves_several_threads(gateway):
    open_long(gateway)
    failures: list[BaseException] = []
    sizes: list[Decimal] = []

    def read():
        try:
            for _ in range(5):
                sizes.append(gateway.positions()[0].size)
        except BaseException as failure:  # collected and asserted below
            failures.append(failure)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sizes == [D("0.010")] * 20


def test_dust_below_the_minimum_is_closed_with_close_all(gateway):
    open_long(gateway)
    (position,) = gateway.positions()
    # A remainder no ordinary order could close (below minOrderQty 0.001).
    dust = dataclasses.replace(position, size=D("0.0004"))
    ack = gateway.close_position(position=dust, order_link_id=link("dust", leg="close"))
    assert gateway.positions() == []
    closing = gateway.get_order(order_link_id=ack.order_link_id)
    assert closing.reduce_only and closing.side is Side.SELL
