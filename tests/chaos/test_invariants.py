"""Each invariant of `make chaos` fails on a record that breaks it, and passes on one that
keeps it: the cheap proof that the run's checks can fail (chaos/invariants.py)."""

from __future__ import annotations

from decimal import Decimal

from chaos import invariants as inv
from chaos.records import (
    ApiCall,
    Cascade,
    Fill,
    Filters,
    ImSample,
    JournalRow,
    PositionRow,
    SentOrder,
    Window,
)

D = Decimal
ENTRY = "wl-entry-BTC-00000000000000a1"
OTHER_ENTRY = "wl-entry-BTC-00000000000000b2"


def order(
    link=ENTRY,
    *,
    at=1000,
    code=None,
    symbol="BTCUSDT",
    qty="0.001",
    reduce_only=False,
    cum="0.001",
    avg="60000",
):
    return SentOrder(link, symbol, "Buy", D(qty), reduce_only, at, code, D(cum), D(avg))


def fill(link, side, qty, at, symbol="BTCUSDT"):
    return Fill(link, symbol, side, D(qty), at)


def test_an_order_link_id_sent_again_after_it_was_accepted_is_a_violation():
    check = inv.link_ids_sent_once([order(at=1000), order(at=2000, code=110072)])
    assert not check.ok and "sent again at 2000" in check.violations[0]


def test_an_order_link_id_sent_again_after_the_venue_refused_it_is_not_a_second_order():
    assert inv.link_ids_sent_once([order(at=1000, code=10006), order(at=2000)]).ok


def test_one_decision_with_two_accepted_entries_is_a_violation():
    journal = [
        JournalRow(ENTRY, "wl", "BTCUSDT", "open_long", "taken", decision_key="event-1"),
        JournalRow(OTHER_ENTRY, "wl", "BTCUSDT", "open_long", "taken", decision_key="event-1"),
    ]
    check = inv.one_order_per_decision([order(ENTRY), order(OTHER_ENTRY, at=1500)], journal)
    assert not check.ok and "event-1" in check.violations[0]
    assert inv.one_order_per_decision([order(ENTRY)], journal[:1]).ok


def test_an_entry_while_halted_past_the_grace_is_a_violation_and_one_inside_it_is_not():
    windows = [Window("halt", 1000, 5000)]
    assert not inv.no_entry_while_blocked([order(at=3000)], windows, grace_ms=500).ok
    assert inv.no_entry_while_blocked([order(at=1200)], windows, grace_ms=500).ok
    assert inv.no_entry_while_blocked([order(at=6000)], windows, grace_ms=500).ok


def test_an_entry_while_panic_locked_or_disabled_for_the_day_is_a_violation():
    for kind in ("panic", "daily"):
        check = inv.no_entry_while_blocked([order(at=9000)], [Window(kind, 1000, None)], grace_ms=500)
        assert not check.ok and kind in check.violations[0]


def test_a_close_while_locked_is_no_entry():
    close = order("risk-close-BTC-00000000000000c3", at=3000, reduce_only=True)
    assert inv.no_entry_while_blocked([close], [Window("panic", 1000, None)], grace_ms=0).ok


def test_a_wl_entry_on_a_pm_managed_symbol_is_a_violation_but_not_on_another_symbol():
    window = [Window("pm", 1000, 5000, "BTCUSDT")]
    assert not inv.no_entry_while_blocked([order(at=3000)], window, grace_ms=0).ok
    assert inv.no_entry_while_blocked([order(at=3000, symbol="ETHUSDT")], window, grace_ms=0).ok


def test_the_im_samples_above_the_block_level_make_a_window_an_entry_may_not_enter():
    samples = [
        ImSample(1000, D("50")),
        ImSample(2000, D("101")),
        ImSample(3000, D("120")),
        ImSample(4000, D("90")),
    ]
    windows = inv.im_block_windows(samples, D("100"))
    assert windows == [Window("im_block", 2000, 4000)]
    assert not inv.no_entry_while_blocked([order(at=3500)], windows, grace_ms=500).ok


def test_an_order_off_the_qty_step_below_the_minimum_or_refused_10001_is_a_violation():
    filters = {"BTCUSDT": Filters(D("0.001"), D("0.001"), D("5"))}
    assert inv.order_filters_respected([order()], filters).ok
    for bad in (
        order(qty="0.0015"),
        order(qty="0.0005", cum="0"),
        order(code=10001),
        order(code=110094),
        order(qty="0.001", cum="0.001", avg="1000"),  # 1 USDT filled: below the 5 USDT notional
    ):
        assert not inv.order_filters_respected([bad], filters).ok, bad


def test_a_wl_entry_filled_while_the_symbol_holds_a_position_is_a_violation():
    orders = [order(ENTRY, at=1000), order(OTHER_ENTRY, at=2000)]
    fills = [fill(ENTRY, "Buy", "0.001", 1001), fill(OTHER_ENTRY, "Buy", "0.001", 2001)]
    check = inv.one_open_entry_per_symbol(orders, fills, [], grace_ms=0)
    assert not check.ok and OTHER_ENTRY in check.violations[0]
    closed_between = [fills[0], fill("", "Sell", "0.001", 1500), fills[1]]
    assert inv.one_open_entry_per_symbol(orders, closed_between, [], grace_ms=0).ok


def test_two_wl_entries_in_one_cascade_are_a_violation_even_when_the_first_was_closed():
    orders = [order(ENTRY, at=1000), order(OTHER_ENTRY, at=2000)]
    fills = [
        fill(ENTRY, "Buy", "0.001", 1001),
        fill("", "Sell", "0.001", 1500),
        fill(OTHER_ENTRY, "Buy", "0.001", 2001),
    ]
    check = inv.one_open_entry_per_symbol(orders, fills, [Cascade("BTCUSDT", 900, 1900)], grace_ms=500)
    assert not check.ok and "cascade" in check.violations[0]


def test_an_accepted_entry_without_a_journal_row_is_a_violation():
    check = inv.journal_has_every_entry([order(ENTRY)], [])
    assert not check.ok
    assert inv.journal_has_every_entry(
        [order(ENTRY)], [JournalRow(ENTRY, "wl", "BTCUSDT", "open_long", "taken")]
    ).ok


def test_a_panel_that_differs_from_the_exchange_is_a_violation():
    exchange = [PositionRow("BTCUSDT", "Buy", D("0.001"))]
    assert inv.panel_matches_exchange(exchange, [PositionRow("BTCUSDT", "Buy", D("0.0010"))]).ok
    assert not inv.panel_matches_exchange(exchange, []).ok
    assert not inv.panel_matches_exchange([], exchange).ok
    assert not inv.panel_orders_match_exchange(["BTCUSDT Sell TakeProfit -"], []).ok


def test_an_open_wl_position_without_its_stop_loss_is_a_violation():
    rows = [PositionRow("BTCUSDT", "Buy", D("0.001"), "61000", "0"), PositionRow("XRPUSDT", "Buy", D("1"))]
    check = inv.open_wl_positions_have_tpsl(rows, {"BTCUSDT"})
    assert check.violations == ["BTCUSDT Buy 0.001: no SL"]


def test_a_daily_stop_that_flattened_twice_never_or_not_at_all_is_a_violation():
    hand = [
        fill("chaos-hand-1", "Buy", "1", 500, "BNBUSDT"),
        fill("risk-close", "Sell", "1", 1500, "BNBUSDT"),
    ]
    stop = JournalRow("", "risk", "", "daily_stop", "taken", at_ms=1000)
    assert inv.daily_stop_flattened_once([stop], hand, crossed=True).ok
    assert not inv.daily_stop_flattened_once([stop, stop], hand, crossed=True).ok
    assert not inv.daily_stop_flattened_once([], hand, crossed=True).ok
    assert not inv.daily_stop_flattened_once([stop], hand[:1], crossed=True).ok


def test_a_panic_answered_not_flat_or_with_a_position_left_is_a_violation():
    flat = {"flat": True, "verified": True}
    assert inv.panic_ended_flat([ApiCall("panic", 900, 1000, 200, flat)], []).ok
    assert not inv.panic_ended_flat([ApiCall("panic", 900, 1000, 503, {"flat": False})], []).ok
    left = [fill(ENTRY, "Buy", "0.001", 950)]
    assert not inv.panic_ended_flat([ApiCall("panic", 900, 1000, 200, flat)], left).ok
    assert not inv.panic_ended_flat([], []).ok


def test_a_reset_accepted_while_a_position_stood_is_a_violation():
    hand = [
        fill("chaos-hand-1", "Buy", "1", 500, "BNBUSDT"),
        fill("panic-close", "Sell", "1", 3000, "BNBUSDT"),
    ]
    refused = ApiCall("reset", 1000, 1100, 409, {"reason_code": "not_flat"})
    accepted_flat = ApiCall("reset", 4000, 4100, 200, {})
    assert inv.reset_refused_while_not_flat([refused, accepted_flat], hand).ok
    accepted_open = ApiCall("reset", 1000, 1100, 200, {})
    assert not inv.reset_refused_while_not_flat([accepted_open], hand).ok
    assert not inv.reset_refused_while_not_flat([accepted_flat], hand).ok  # never tried while open


def test_a_secret_in_a_log_is_a_violation_naming_where():
    check = inv.no_secrets(
        {"log engine.log": "x api_key=chaoskey123 y", "database rows": "[]"}, {"SIM_API_KEY": "chaoskey123"}
    )
    assert check.violations == ["SIM_API_KEY in log engine.log"]
