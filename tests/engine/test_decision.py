"""The entry decision: both entry sides with exact numbers, every skip reason, and their order."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.events import LiquidationEvent, make_event_id
from trading.instruments import Instrument
from trading.rules import Side
from trading.rules.decision import (
    SKIP_ORDER,
    AccountSnapshot,
    CoinRule,
    Entry,
    Skip,
    SkipReason,
    decide,
)
from trading.rules.order_link_id import order_link_id
from trading.rules.rounding import UP, round_to_step
from trading.rules.vwap import MINUTE_MS, Candle, MarketState

NOW = 1_737_996_700_000
D = Decimal


def event(
    side: str = "long",
    *,
    symbol: str = "BTCUSDT",
    price: str = "98000",
    qty: str = "0.5",
    event_time: int = NOW - 150,
) -> LiquidationEvent:
    return LiquidationEvent(
        symbol=symbol,
        liquidated_side=side,
        price=D(price),
        qty=D(qty),
        notional=D(price) * D(qty),
        event_time=event_time,
        source="binance",
        event_id=make_event_id(
            source="binance", symbol=symbol, event_time=event_time, liquidated_side=side, qty=qty, price=price
        ),
    )


def coin(**changes) -> CoinRule:
    values = dict(
        symbol="BTCUSDT",
        enabled=True,
        long_offset_pct=D("1"),
        short_offset_pct=D("1"),
        min_liquidation_usdt=D("1000"),
        order_size_usdt=D("100"),
        order_size_pct_equity=None,
        leverage=10,
        take_profit_pct=D("2"),
        stop_loss_pct=D("1"),
        vwap_window_minutes=60,
        entry_cooldown_seconds=60,
    )
    values.update(changes)
    return CoinRule(**values)


def instrument(**changes) -> Instrument:
    values = dict(
        symbol="BTCUSDT",
        qty_step=D("0.001"),
        min_order_qty=D("0.001"),
        max_order_qty=D("1190"),
        max_market_order_qty=D("119"),
        min_notional_value=D("5"),
        tick_size=D("0.1"),
        max_leverage=D("100"),
        status="Trading",
    )
    values.update(changes)
    return Instrument(**values)


def account(**changes) -> AccountSnapshot:
    values = dict(
        equity_usdt=D("1000"),
        im_pct=D("12.5"),
        im_warn_pct=D("80"),
        im_block_pct=D("100"),
        max_open_positions=5,
    )
    values.update(changes)
    return AccountSnapshot(**values)


def market(
    last_price: str | None = "98765.4",
    *,
    vwap_turnover: str = "100000",
    price_ms: int = NOW - 200,
    candle_ms: int = NOW - 20_000,
    window: int = 60,
):
    """BTCUSDT with VWAP = vwap_turnover (one candle of volume 1) over ``window`` minutes."""
    state = MarketState()
    view = state.watch("BTCUSDT", [window])
    start = NOW - NOW % MINUTE_MS
    if vwap_turnover is not None:
        state.apply_candles(
            "BTCUSDT", [Candle(start, D(1), D(1), D(1), D(1), D(1), D(vwap_turnover), False)], at_ms=candle_ms
        )
    else:
        view.last_candle_ms = candle_ms
    state.apply_price("BTCUSDT", D(last_price) if last_price else None, at_ms=price_ms)
    return view


def run(liquidation=None, **overrides):
    inputs = dict(coin=coin(), market=market(), account=account(), instrument=instrument(), now_ms=NOW)
    inputs.update(overrides)
    return decide(liquidation or event(), **inputs)


# -- entries ------------------------------------------------------------------


def test_a_long_liquidation_below_vwap_opens_a_long_with_exact_numbers():
    result = run(event("long"))
    expected_link_id = order_link_id(
        strategy="wl", symbol="BTCUSDT", decision_key=event("long").event_id, leg="entry"
    )
    assert result == Entry(
        symbol="BTCUSDT",
        side=Side.BUY,
        # 100 USDT margin x 10 = 1000 USDT; 1000 / 98765.4 = 0.010125 -> down to the 0.001 step
        qty=D("0.010"),
        price=D("98765.4"),
        order_link_id=expected_link_id,
        leverage=10,
        take_profit=D("100740.7"),  # 98765.4 x 1.02 = 100740.708, down (toward the market) for a long
        stop_loss=D("97777.8"),  # 98765.4 x 0.99 = 97777.746, up (toward the market) for a long
        vwap=D("100000"),
        offset_pct=D("1"),
        deviation_pct=D("-1.234600"),
        im_pct=D("12.5"),
        margin_usdt=D("100"),
        notional_usdt=D("987.6540"),
        event_id=event("long").event_id,
    )
    assert result.taken is True
    assert result.order_link_id.startswith("wl-entry-BTC-") and len(result.order_link_id) <= 36


def test_a_short_liquidation_above_vwap_opens_a_short_with_exact_numbers():
    result = run(event("short"), market=market("101234.5"))
    assert isinstance(result, Entry)
    assert (result.side, result.qty, result.price) == (
        Side.SELL,
        D("0.009"),
        D("101234.5"),
    )  # 1000/101234.5 = 0.00987
    assert result.take_profit == D("99209.9")  # 101234.5 x 0.98 = 99209.81, up for a short
    assert result.stop_loss == D("102246.8")  # 101234.5 x 1.01 = 102246.845, down for a short
    assert result.offset_pct == D("1")
    assert result.deviation_pct == D("1.234500")
    assert result.notional_usdt == D("911.1105")


@pytest.mark.parametrize(
    ("side", "last_price", "taken"),
    [
        ("long", "99000", True),  # exactly VWAP x (1 - 1 %): enters
        ("long", "99000.1", False),
        ("long", "100000", False),
        ("long", "101500", False),  # a long liquidation never opens a short
        ("short", "101000", True),  # exactly VWAP x (1 + 1 %)
        ("short", "100999.9", False),
        ("short", "98000", False),  # a short liquidation never opens a long
    ],
)
def test_the_offset_boundary(side, last_price, taken):
    result = run(event(side), market=market(last_price))
    assert result.taken is taken
    if not taken:
        assert result.reason == SkipReason.OFFSET_NOT_MET
        assert (result.price, result.vwap) == (D(last_price), D("100000"))
    else:
        assert result.side == (Side.BUY if side == "long" else Side.SELL)


@pytest.mark.parametrize(
    ("coin_changes", "account_changes", "qty", "margin"),
    [
        ({}, {}, "0.010", "100"),
        # 5 % of 1000 USDT equity = 50 USDT margin x 10 = 500 USDT / 98765.4 = 0.00506
        ({"order_size_usdt": None, "order_size_pct_equity": D("5")}, {}, "0.005", "50.00"),
        (
            {"order_size_usdt": None, "order_size_pct_equity": D("5")},
            {"equity_usdt": D("20000")},
            "0.101",
            "1000.00",
        ),
        ({"leverage": 1}, {}, "0.001", "100"),
        ({"order_size_usdt": D("2500"), "leverage": 25}, {}, "0.632", "2500"),
    ],
)
def test_sizing_by_usdt_or_percent_of_equity(coin_changes, account_changes, qty, margin):
    result = run(coin=coin(**coin_changes), account=account(**account_changes))
    assert isinstance(result, Entry)
    assert (result.qty, result.margin_usdt) == (D(qty), D(margin))
    assert result.qty * result.price <= result.margin_usdt * result.leverage


def test_instrument_steps_and_ticks_shape_the_order():
    sol = instrument(symbol="BTCUSDT", qty_step=D("0.1"), min_order_qty=D("0.1"), tick_size=D("0.001"))
    result = run(instrument=sol)
    assert result.reason == SkipReason.BELOW_MIN_QTY  # 0.0101 rounds down to 0.0 at a 0.1 step
    result = run(instrument=sol, coin=coin(order_size_usdt=D("1000")))
    assert (result.qty, result.take_profit, result.stop_loss) == (D("0.1"), D("100740.708"), D("97777.746"))


# -- skips ----------------------------------------------------------------------


SKIPS = [
    # (id, reason, overrides for run())
    ("panic", SkipReason.PANIC_LOCKED, dict(account=account(panic_locked=True))),
    ("halted", SkipReason.HALTED, dict(account=account(halted=True))),
    ("disabled today", SkipReason.DISABLED_FOR_DAY, dict(account=account(disabled_until_ms=NOW + 1))),
    ("no coin row", SkipReason.NOT_CONFIGURED, dict(coin=None)),
    ("coin without size", SkipReason.NOT_CONFIGURED, dict(coin=coin(order_size_usdt=None))),
    ("coin disabled", SkipReason.DISABLED, dict(coin=coin(enabled=False))),
    (
        "small liquidation",
        SkipReason.BELOW_SIZE_THRESHOLD,
        dict(coin=coin(min_liquidation_usdt=D("49000.01"))),
    ),
    ("pm symbol", SkipReason.PM_MANAGED, dict(account=account(pm_symbols=frozenset({"BTCUSDT"})))),
    ("no market", SkipReason.STALE_PRICE, dict(market=None)),
    ("old event", SkipReason.STALE_EVENT, dict(coin=coin(max_event_age_ms=149))),
    ("no price", SkipReason.STALE_PRICE, dict(market=market(None))),
    ("old price", SkipReason.STALE_PRICE, dict(market=market(price_ms=NOW - 10_001))),
    ("old klines", SkipReason.STALE_PRICE, dict(market=market(candle_ms=NOW - 180_001))),
    ("no vwap volume", SkipReason.NO_VWAP, dict(market=market(vwap_turnover=None))),
    ("vwap window not tracked", SkipReason.NO_VWAP, dict(coin=coin(vwap_window_minutes=15))),
    ("not far enough", SkipReason.OFFSET_NOT_MET, dict(market=market("99500"))),
    ("im at block", SkipReason.IM_ABOVE_BLOCK, dict(account=account(im_pct=D("100")))),
    ("im above block", SkipReason.IM_ABOVE_BLOCK, dict(account=account(im_pct=D("250")))),
    ("im at warn", SkipReason.IM_ABOVE_WARN, dict(account=account(im_pct=D("80")))),
    (
        "position open",
        SkipReason.ALREADY_IN_POSITION,
        dict(account=account(open_position_symbols=frozenset({"BTCUSDT"}))),
    ),
    (
        "entry order open",
        SkipReason.ALREADY_IN_POSITION,
        dict(account=account(open_order_symbols=frozenset({"BTCUSDT"}))),
    ),
    (
        "max positions",
        SkipReason.MAX_POSITIONS,
        dict(
            account=account(
                open_position_symbols=frozenset({"A1USDT", "A2USDT", "A3USDT", "A4USDT", "A5USDT"})
            )
        ),
    ),
    (
        "max with pending orders",
        SkipReason.MAX_POSITIONS,
        dict(
            account=account(
                max_open_positions=2,
                open_position_symbols=frozenset({"A1USDT"}),
                open_order_symbols=frozenset({"A2USDT"}),
            )
        ),
    ),
    ("cooldown", SkipReason.COOLDOWN, dict(account=account(last_entry_ms={"BTCUSDT": NOW - 59_999}))),
    ("no instrument", SkipReason.INSTRUMENT_UNKNOWN, dict(instrument=None)),
    ("instrument settling", SkipReason.INSTRUMENT_UNKNOWN, dict(instrument=instrument(status="Settling"))),
    ("tiny margin", SkipReason.BELOW_MIN_QTY, dict(coin=coin(order_size_usdt=D("0.0001")))),
    (
        "no equity",
        SkipReason.BELOW_MIN_QTY,
        dict(
            coin=coin(order_size_usdt=None, order_size_pct_equity=D("5")), account=account(equity_usdt=D("0"))
        ),
    ),
    (
        "negative equity",
        SkipReason.BELOW_MIN_QTY,
        dict(
            coin=coin(order_size_usdt=None, order_size_pct_equity=D("5")),
            account=account(equity_usdt=D("-3")),
        ),
    ),
    (
        "below min notional",
        SkipReason.BELOW_MIN_NOTIONAL,
        dict(instrument=instrument(min_notional_value=D("1000"))),
    ),
    (
        "above max market qty",
        SkipReason.ABOVE_MAX_MARKET_QTY,
        dict(instrument=instrument(max_market_order_qty=D("0.005"))),
    ),
    ("above max qty", SkipReason.ABOVE_MAX_QTY, dict(instrument=instrument(max_order_qty=D("0.005")))),
]


@pytest.mark.parametrize(("reason", "overrides"), [row[1:] for row in SKIPS], ids=[row[0] for row in SKIPS])
def test_every_skip_reason(reason, overrides):
    result = run(**overrides)
    assert isinstance(result, Skip)
    assert result.reason == reason
    assert result.taken is False
    assert (result.symbol, result.event_id) == ("BTCUSDT", event().event_id)


def test_every_reason_code_has_a_case():
    assert {row[1] for row in SKIPS} == set(SkipReason) - {SkipReason.QTY_OFF_STEP}


@pytest.mark.parametrize(
    ("overrides", "taken"),
    [
        (dict(account=account(disabled_until_ms=NOW)), True),  # the day's lock ended this very ms
        (dict(account=account(last_entry_ms={"BTCUSDT": NOW - 60_000})), True),  # cooldown just over
        (dict(account=account(last_entry_ms={"ETHUSDT": NOW})), True),  # another symbol's cooldown
        (dict(account=account(im_pct=D("79.9999"))), True),
        (dict(coin=coin(min_liquidation_usdt=D("49000"))), True),  # 98000 x 0.5 = 49000: at the threshold
        (dict(market=market(price_ms=NOW - 10_000)), True),
        (dict(account=account(max_open_positions=2, open_position_symbols=frozenset({"A1USDT"}))), True),
        (dict(account=account(pm_symbols=frozenset({"ETHUSDT"}))), True),
        (dict(coin=coin(max_event_age_ms=150)), True),  # the event is 150 ms old: at the limit
    ],
)
def test_edges_that_still_enter(overrides, taken):
    assert run(**overrides).taken is taken


def test_checks_run_in_the_documented_order():
    """With every check failing, the first one is reported; fixing it reveals the next, in SKIP_ORDER."""
    failing = {
        SkipReason.PANIC_LOCKED: ("account", {"panic_locked": True}),
        SkipReason.HALTED: ("account", {"halted": True}),
        SkipReason.DISABLED_FOR_DAY: ("account", {"disabled_until_ms": NOW + 1}),
        SkipReason.NOT_CONFIGURED: ("coin", {"order_size_usdt": None}),
        SkipReason.DISABLED: ("coin", {"enabled": False}),
        SkipReason.BELOW_SIZE_THRESHOLD: ("coin", {"min_liquidation_usdt": D("1000000")}),
        SkipReason.PM_MANAGED: ("account", {"pm_symbols": frozenset({"BTCUSDT"})}),
        SkipReason.STALE_EVENT: ("coin", {"max_event_age_ms": 100}),
        SkipReason.STALE_PRICE: ("market", {"price_ms": NOW - 60_000}),
        SkipReason.NO_VWAP: ("market", {"vwap_turnover": None}),
        SkipReason.OFFSET_NOT_MET: ("market", {"last_price": "99999"}),
        SkipReason.IM_ABOVE_BLOCK: ("account", {"im_pct": D("150")}),
        SkipReason.IM_ABOVE_WARN: ("account", {"im_pct": D("90")}),
        SkipReason.ALREADY_IN_POSITION: ("account", {"open_position_symbols": frozenset({"BTCUSDT"})}),
        SkipReason.MAX_POSITIONS: ("account", {"max_open_positions": 0}),
        SkipReason.COOLDOWN: ("account", {"last_entry_ms": {"BTCUSDT": NOW}}),
        SkipReason.INSTRUMENT_UNKNOWN: ("instrument", {"status": "PreLaunch"}),
        SkipReason.BELOW_MIN_QTY: ("instrument", {"min_order_qty": D("1")}),
        SkipReason.BELOW_MIN_NOTIONAL: ("instrument", {"min_notional_value": D("5000")}),
        SkipReason.ABOVE_MAX_MARKET_QTY: ("instrument", {"max_market_order_qty": D("0.001")}),
        SkipReason.ABOVE_MAX_QTY: ("instrument", {"max_order_qty": D("0.001")}),
    }
    ordered = [reason for reason in SKIP_ORDER if reason in failing]
    assert ordered == list(failing)  # the table above is written in the documented order
    seen = []
    for start in range(len(ordered)):
        parts: dict[str, dict] = {"account": {}, "coin": {}, "market": {}, "instrument": {}}
        # Later failures that would mask nothing are applied together; a field set by two reasons
        # keeps the earlier reason's value.
        for reason in reversed(ordered[start:]):
            part, changes = failing[reason]
            parts[part].update(changes)
        result = run(
            account=account(**parts["account"]),
            coin=coin(**parts["coin"]),
            market=market(**parts["market"]),
            instrument=instrument(**parts["instrument"]),
        )
        seen.append(result.reason)
    assert seen == ordered


def test_with_entry_marks_the_symbol_busy_and_starts_its_cooldown():
    before = account(last_entry_ms={"ETHUSDT": 5})
    after = before.with_entry("BTCUSDT", NOW)
    assert after.open_order_symbols == frozenset({"BTCUSDT"})
    assert after.last_entry_ms == {"ETHUSDT": 5, "BTCUSDT": NOW}
    assert before.last_entry_ms == {"ETHUSDT": 5}  # the old snapshot is unchanged
    assert run(account=after).reason == SkipReason.ALREADY_IN_POSITION


def test_coin_rule_from_a_model_row():
    from trading.models import Coin

    row = Coin(
        symbol="BTCUSDT",
        enabled=True,
        long_offset_pct=D("1.5000"),
        short_offset_pct=D("2.0000"),
        min_liquidation_usdt=D("5000.00"),
        order_size_usdt=None,
        order_size_pct_equity=D("2.5"),
        leverage=5,
        take_profit_pct=D("3"),
        stop_loss_pct=D("1.5"),
        vwap_window_minutes=30,
        entry_cooldown_seconds=120,
        max_event_age_ms=1500,
    )
    rule = CoinRule.from_model(row)
    assert rule == coin(
        long_offset_pct=D("1.5"),
        short_offset_pct=D("2"),
        min_liquidation_usdt=D("5000"),
        order_size_usdt=None,
        order_size_pct_equity=D("2.5"),
        leverage=5,
        take_profit_pct=D("3"),
        stop_loss_pct=D("1.5"),
        vwap_window_minutes=30,
        entry_cooldown_seconds=120,
        max_event_age_ms=1500,
    )
    assert (rule.long_entry_factor, rule.short_entry_factor, rule.cooldown_ms) == (
        D("0.985"),
        D("1.02"),
        120_000,
    )


@pytest.mark.parametrize(
    ("event_time", "max_age_ms", "reason"),
    [
        (NOW - 2_000, 2_000, None),  # the default limit, exactly: still news
        (NOW - 2_001, 2_000, SkipReason.STALE_EVENT),
        (NOW - 45_000, 2_000, SkipReason.STALE_EVENT),  # a backlog after a feed stall
        (NOW + 300, 2_000, None),  # the venue's clock a little ahead of ours: age < 0, not stale
        (NOW - 5_000, 10_000, None),  # a coin that allows older events
    ],
)
def test_a_liquidation_older_than_the_coins_limit_is_skipped_as_stale(event_time, max_age_ms, reason):
    result = run(event(event_time=event_time), coin=coin(max_event_age_ms=max_age_ms))
    assert (None if result.taken else result.reason) == reason


def test_an_unknown_liquidated_side_is_a_programming_error():
    bad = dataclasses.replace(event(), liquidated_side="both")
    with pytest.raises(ValueError):
        run(bad)


# -- properties -------------------------------------------------------------------

prices = st.decimals(min_value=D("0.0001"), max_value=D("200000"), places=4)
steps = st.sampled_from([D("0.001"), D("0.01"), D("0.1"), D("1"), D("10")])


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    vwap=prices,
    move_pct=st.decimals(-30, 30, places=3),
    margin=st.decimals(D("0.01"), D("100000"), places=2),
    leverage=st.integers(1, 100),
    step=steps,
    tick=st.sampled_from([D("0.0001"), D("0.01"), D("0.5")]),
)
def test_any_entry_respects_the_instrument_and_the_budget(side, vwap, move_pct, margin, leverage, step, tick):
    # Venue prices are multiples of the tick.
    vwap = round_to_step(vwap, tick, direction=UP)
    last = round_to_step(vwap * (1 + move_pct / 100), tick, direction=UP)
    if last <= 0 or vwap <= 0:
        return
    state = MarketState()
    view = state.watch("BTCUSDT", [60])
    state.apply_candles(
        "BTCUSDT", [Candle(NOW - NOW % MINUTE_MS, vwap, vwap, vwap, vwap, D(1), vwap, False)], at_ms=NOW
    )
    state.apply_price("BTCUSDT", last, at_ms=NOW)
    rules = instrument(
        qty_step=step, min_order_qty=step, tick_size=tick, max_order_qty=None, max_market_order_qty=None
    )
    result = decide(
        event(side),
        coin=coin(order_size_usdt=margin, leverage=leverage, min_liquidation_usdt=D("1")),
        market=view,
        account=account(),
        instrument=rules,
        now_ms=NOW,
    )
    if isinstance(result, Skip):
        assert result.reason in (
            SkipReason.OFFSET_NOT_MET,
            SkipReason.BELOW_MIN_QTY,
            SkipReason.BELOW_MIN_NOTIONAL,
        )
        return
    assert result.side == (Side.BUY if side == "long" else Side.SELL)
    assert result.qty % step == 0 and result.qty >= step
    assert result.qty * last <= margin * leverage
    assert (result.qty + step) * last > margin * leverage  # the largest qty that fits
    assert result.stop_loss % tick == 0
    if result.side is Side.BUY:
        assert last <= vwap * D("0.99")
        assert result.stop_loss < last or result.stop_loss == last
    else:
        assert last >= vwap * D("1.01")
        assert result.stop_loss >= last


@settings(max_examples=300, deadline=None)
@given(
    age_ms=st.integers(-10_000, 120_000),
    max_age_ms=st.integers(100, 60_000),
    side=st.sampled_from(["long", "short"]),
)
def test_an_event_is_stale_exactly_when_older_than_the_limit(age_ms, max_age_ms, side):
    last = "97000" if side == "long" else "103000"  # beyond the 1 % offset either way
    result = run(
        event(side, event_time=NOW - age_ms),
        coin=coin(max_event_age_ms=max_age_ms),
        market=market(last),
    )
    assert (not result.taken and result.reason == SkipReason.STALE_EVENT) == (age_ms > max_age_ms)
    assert result.taken == (age_ms <= max_age_ms)
