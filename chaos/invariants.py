"""The invariants of a chaos run, as pure functions over plain records (chaos/records.py).

Each returns a `Check`: how many things it looked at and one line per violation. They know
nothing of Django, Redis or the simulator; `chaos.collect` builds their input from the
simulator's record, the database and the fault script's own log. tests/chaos feeds each a
violating record and sees it fail.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from chaos.records import (
    ApiCall,
    Cascade,
    Check,
    Fill,
    Filters,
    ImSample,
    JournalRow,
    PositionRow,
    SentOrder,
    Window,
)

ZERO = Decimal("0")
# Our parameter bug (Bybit's "params error"), and the minimum-notional refusal.
PARAMS_ERROR = 10001
NOTIONAL_TOO_LOW = 110094


def _by_time(orders: Iterable[SentOrder]) -> list[SentOrder]:
    return sorted(orders, key=lambda order: order.received_ms)


def positions_at(fills: Iterable[Fill], at_ms: int) -> dict[str, Decimal]:
    """Net position per symbol after every fill up to `at_ms` (one-way mode); open ones only."""
    net: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for fill in fills:
        if fill.time_ms <= at_ms:
            net[fill.symbol] += fill.signed_qty
    return {symbol: size for symbol, size in net.items() if size != 0}


def link_ids_sent_once(orders: Sequence[SentOrder]) -> Check:
    """No orderLinkId reaches the venue again once a copy of it was accepted (a second copy
    is a second order, or a 110072 that only the venue's memory turned away). A copy the
    venue refused (10006, a 5xx before handling) made no order, so sending it again is not
    a second order."""
    check = Check("orderLinkId never sent twice")
    accepted_at: dict[str, int] = {}
    for order in _by_time(orders):
        if not order.link_id:
            continue
        if order.link_id in accepted_at:
            check.violations.append(
                f"{order.link_id} sent again at {order.received_ms} "
                f"(answer {order.reject_code or 'accepted'}) after it was accepted at "
                f"{accepted_at[order.link_id]}"
            )
        elif order.accepted:
            accepted_at[order.link_id] = order.received_ms
    check.checked = len({order.link_id for order in orders if order.link_id})
    return check


def one_order_per_decision(orders: Sequence[SentOrder], journal: Sequence[JournalRow]) -> Check:
    """No decision (a liquidation's event id, a PM scan) produced two accepted entry orders."""
    check = Check("no decision produced two orders")
    key_of = {
        row.link_id: (row.strategy, row.symbol, row.decision_key) for row in journal if row.decision_key
    }
    links_by_key: dict[tuple, set[str]] = defaultdict(set)
    for order in orders:
        if order.accepted and order.is_entry and order.link_id in key_of:
            links_by_key[key_of[order.link_id]].add(order.link_id)
    for (strategy, symbol, key), links in sorted(links_by_key.items()):
        if len(links) > 1:
            check.violations.append(
                f"{strategy} {symbol} decision {key}: {len(links)} orders {sorted(links)}"
            )
    check.checked = len(links_by_key)
    return check


def im_block_windows(samples: Sequence[ImSample], block_pct: Decimal) -> list[Window]:
    """The spans in which the sampled IM % stood at or above the block level."""
    windows: list[Window] = []
    start: int | None = None
    for sample in sorted(samples, key=lambda s: s.at_ms):
        if sample.im_pct >= block_pct and start is None:
            start = sample.at_ms
        elif sample.im_pct < block_pct and start is not None:
            windows.append(Window("im_block", start, sample.at_ms))
            start = None
    if start is not None:
        windows.append(Window("im_block", start, None))
    return windows


def no_entry_while_blocked(orders: Sequence[SentOrder], windows: Sequence[Window], *, grace_ms: int) -> Check:
    """No entry order reached the venue while trading was locked, halted, disabled for the
    day or above the IM block level, nor a WL entry on a PM-managed symbol. `grace_ms` after
    a switch turns on is the time the switch takes to reach the engine (README: 100 ms for
    the switches, 2 s for settings), given generously for a loaded machine."""
    check = Check("no entry while locked/halted/disabled/IM-blocked/PM-managed")
    entries = [order for order in orders if order.is_entry]
    for order in _by_time(entries):
        for window in windows:
            if window.kind == "pm" and (not order.is_wl_entry or order.symbol != window.symbol):
                continue
            if window.start_ms + grace_ms <= order.received_ms and (
                window.end_ms is None or order.received_ms <= window.end_ms
            ):
                check.violations.append(
                    f"{order.link_id} at {order.received_ms}: {window.kind}"
                    f"{' ' + window.symbol if window.symbol else ''} since {window.start_ms}"
                )
    check.checked = len(entries)
    return check


def order_filters_respected(orders: Sequence[SentOrder], filters: Mapping[str, Filters]) -> Check:
    """Every order we sent respected qtyStep, minOrderQty and minNotionalValue; no 10001."""
    check = Check("qtyStep/minOrderQty/minNotional respected, no 10001")
    ours = [order for order in orders if order.link_id]
    for order in ours:
        where = f"{order.link_id} {order.symbol} qty {order.qty}"
        if order.reject_code == PARAMS_ERROR:
            check.violations.append(f"{where}: refused 10001 (our parameter bug)")
        if order.reject_code == NOTIONAL_TOO_LOW:
            check.violations.append(f"{where}: refused 110094 (below the minimum notional)")
        rules = filters.get(order.symbol)
        if rules is None:
            check.violations.append(f"{where}: not a listed instrument")
            continue
        if order.qty and order.qty % rules.qty_step:
            check.violations.append(f"{where}: not a multiple of qtyStep {rules.qty_step}")
        if not order.reduce_only and order.qty < rules.min_qty:
            check.violations.append(f"{where}: below minOrderQty {rules.min_qty}")
        notional = order.cum_qty * order.avg_price
        if not order.reduce_only and order.cum_qty and notional < rules.min_notional:
            check.violations.append(f"{where}: filled notional {notional} below {rules.min_notional}")
    check.checked = len(ours)
    return check


def one_open_entry_per_symbol(
    orders: Sequence[SentOrder], fills: Sequence[Fill], cascades: Sequence[Cascade], *, grace_ms: int
) -> Check:
    """At most one open WL entry per symbol: no WL entry fills while the symbol already
    holds a position, and at most one WL entry per injected liquidation cascade (also when
    the engine was killed and restarted in the middle of it)."""
    check = Check("at most one open WL entry per symbol and cascade")
    entries = {order.link_id: order for order in orders if order.is_wl_entry and order.accepted}
    net: dict[str, Decimal] = defaultdict(lambda: ZERO)
    first_fill_seen: set[str] = set()
    for fill in sorted(fills, key=lambda f: f.time_ms):
        if fill.link_id in entries and fill.link_id not in first_fill_seen:
            first_fill_seen.add(fill.link_id)
            if net[fill.symbol] != 0:
                check.violations.append(
                    f"{fill.link_id} filled at {fill.time_ms} while {fill.symbol} held {net[fill.symbol]}"
                )
        net[fill.symbol] += fill.signed_qty
    for cascade in cascades:
        inside = sorted(
            link
            for link, order in entries.items()
            if order.symbol == cascade.symbol
            and cascade.start_ms <= order.received_ms <= cascade.end_ms + grace_ms
        )
        if len(inside) > 1:
            check.violations.append(
                f"cascade on {cascade.symbol} at {cascade.start_ms}: {len(inside)} entries"
            )
    check.checked = len(entries) + len(cascades)
    return check


def journal_has_every_entry(orders: Sequence[SentOrder], journal: Sequence[JournalRow]) -> Check:
    """Every entry the venue accepted has its journal row (none lost to a crash)."""
    check = Check("every accepted entry is in the journal")
    journaled = {row.link_id for row in journal}
    accepted = [order for order in orders if order.is_entry and order.accepted]
    for order in accepted:
        if order.link_id not in journaled:
            check.violations.append(
                f"{order.link_id} ({order.symbol}, {order.received_ms}) has no journal row"
            )
    check.checked = len(accepted)
    return check


def _position_key(row: PositionRow) -> tuple[str, str, Decimal]:
    return (row.symbol, row.side, row.size.normalize())


def panel_matches_exchange(exchange: Sequence[PositionRow], panel: Sequence[PositionRow]) -> Check:
    """After the last restart and a quiet spell, the panel's positions are the exchange's."""
    check = Check("panel positions equal the exchange's")
    on_exchange = {_position_key(row) for row in exchange}
    on_panel = {_position_key(row) for row in panel}
    for symbol, side, size in sorted(on_exchange - on_panel):
        check.violations.append(f"exchange has {symbol} {side} {size}, the panel does not")
    for symbol, side, size in sorted(on_panel - on_exchange):
        check.violations.append(f"the panel shows {symbol} {side} {size}, the exchange does not")
    check.checked = len(on_exchange | on_panel)
    return check


def panel_orders_match_exchange(exchange: Iterable[str], panel: Iterable[str]) -> Check:
    """After the quiet spell, the panel's open orders (by orderId) are the exchange's."""
    check = Check("panel open orders equal the exchange's")
    on_exchange, on_panel = set(exchange), set(panel)
    for order_id in sorted(on_exchange - on_panel):
        check.violations.append(f"exchange has open order {order_id}, the panel does not")
    for order_id in sorted(on_panel - on_exchange):
        check.violations.append(f"the panel shows open order {order_id}, the exchange does not")
    check.checked = len(on_exchange | on_panel)
    return check


def open_wl_positions_have_tpsl(exchange: Sequence[PositionRow], coin_symbols: Iterable[str]) -> Check:
    """Every open position on a configured coin carries both a take-profit and a stop-loss."""
    check = Check("every open WL position has TP and SL")
    coins = set(coin_symbols)
    for row in exchange:
        if row.symbol not in coins:
            continue
        check.checked += 1
        missing = [
            name for name, value in (("TP", row.take_profit), ("SL", row.stop_loss)) if value in ("", "0")
        ]
        if missing:
            check.violations.append(f"{row.symbol} {row.side} {row.size}: no {' and no '.join(missing)}")
    return check


def daily_stop_flattened_once(
    journal: Sequence[JournalRow], fills: Sequence[Fill], *, crossed: bool, within_ms: int = 30_000
) -> Check:
    """A daily-stop crossing flattened exactly once, and the venue was flat within
    `within_ms` of the pass that saw it (the row carries the pass's time, before its
    flatten; nothing may open afterwards, trading being off until tomorrow)."""
    check = Check("daily-stop crossing flattened once")
    stops = [row for row in journal if row.action == "daily_stop"]
    flattened = [row for row in stops if row.outcome == "taken"]
    check.checked = len(stops)
    if crossed and not flattened:
        check.violations.append(f"the stop was crossed but never flattened ({len(stops)} attempts)")
    if len(flattened) > 1:
        check.violations.append(f"flattened {len(flattened)} times: {[row.at_ms for row in flattened]}")
    for row in flattened:
        left = positions_at(fills, row.at_ms + within_ms)
        if left:
            check.violations.append(
                f"flattened at {row.at_ms}, the venue still held {left} {within_ms} ms later"
            )
    return check


def panic_ended_flat(calls: Sequence[ApiCall], fills: Sequence[Fill]) -> Check:
    """The panic's last answer was 200, verified flat, and the venue agrees."""
    check = Check("panic ended verified flat")
    panics = [call for call in calls if call.name == "panic"]
    check.checked = len(panics)
    if not panics:
        check.violations.append("no panic was answered")
        return check
    last = panics[-1]
    if last.status != 200 or not last.body.get("flat") or not last.body.get("verified"):
        check.violations.append(
            f"last panic answered {last.status} flat={last.body.get('flat')} "
            f"verified={last.body.get('verified')}"
        )
    left = positions_at(fills, last.at_ms)
    if left:
        check.violations.append(f"panic answered at {last.at_ms}, the venue still held {left}")
    return check


def reset_refused_while_not_flat(calls: Sequence[ApiCall], fills: Sequence[Fill]) -> Check:
    """No panic reset succeeded while a position stood on the venue (from the call to its
    answer), and the script's reset with a position open was refused."""
    check = Check("reset refused while not flat")
    resets = [call for call in calls if call.name == "reset"]
    check.checked = len(resets)
    refused_while_open = 0
    for call in resets:
        open_throughout = positions_at(fills, call.sent_ms) and positions_at(fills, call.at_ms)
        if call.status == 200 and open_throughout:
            check.violations.append(
                f"reset accepted at {call.at_ms} with {positions_at(fills, call.at_ms)} open"
            )
        if call.status == 409 and call.body.get("reason_code") == "not_flat" and open_throughout:
            refused_while_open += 1
    if resets and not refused_while_open:
        check.violations.append("no reset was tried (and refused) while a position was open")
    return check


def no_secrets(sources: Mapping[str, str], secrets: Mapping[str, str]) -> Check:
    """No API key, secret, token or bot token in any log, response body or database row."""
    check = Check("no key/secret/token in logs, responses, database")
    for source, text in sorted(sources.items()):
        for label, secret in sorted(secrets.items()):
            if secret and secret in text:
                check.violations.append(f"{label} in {source}")
    check.checked = len(sources)
    return check
