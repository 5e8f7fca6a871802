"""The liquidation engine's entry decision: one liquidation in, one ``Entry`` or ``Skip`` out.

Pure: plain data in, plain data out, no I/O, no clock (``now_ms`` is passed in).
The engine builds the inputs from its in-memory state and acts on the answer.

A liquidation of longs pushes price down; if Bybit's last price is at least
``long_offset_pct`` % below the coin's rolling VWAP, we buy the dip (open a LONG).
A liquidation of shorts pushes price up; at least ``short_offset_pct`` % above
VWAP, we sell the spike (open a SHORT).

Checks run in this order and the first that fails is the one reason reported
(``SKIP_ORDER`` lists it): the global locks first (nothing else matters while
trading is locked), then the coin's configuration, the event's size and age, the
market data, the account guards, the instrument, and last the order size, which is
the only check that needs arithmetic on the instrument's filters.

The event's age is ``now_ms - event.event_time``: our wall clock against the venue's
timestamp of the liquidation. Both are UTC ms; NTP keeps the two within tens of ms,
far inside the 2 s default, and a venue clock ahead of ours gives a negative age,
which is never stale. After a feed stall the frames queued in the socket arrive in
a burst, each older than the coin's ``max_event_age_ms``: they are skipped as
``stale_event`` instead of trading on a price that moved since. In ``sim`` mode the
simulator's replay at speed 1 runs on the wall clock too (docs/simulator.md); replays
at higher speeds stamp times ahead of ours, so nothing is stale there.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from trading.rules import Side, rounding
from trading.rules.order_link_id import order_link_id
from trading.rules.rounding import (
    check_order_size,
    qty_for_notional,
    round_stop_loss,
    round_take_profit,
)

STRATEGY = "wl"
ENTRY_LEG = "entry"
ONE = Decimal(1)
HUNDRED = Decimal(100)
# Bybit linear tickers push every 100 ms while anything changes, and a delta
# without lastPrice still refreshes it (see SymbolMarket.apply_price): 10 s of
# silence means our copy of the price is no longer the market's.
DEFAULT_MAX_PRICE_AGE_MS = 10_000
# Bybit pushes klines every 1-60 s; three minutes without one means the kline
# stream (and so the VWAP) stopped updating.
DEFAULT_MAX_CANDLE_AGE_MS = 180_000
# A liquidation older than this when we decide is a backlog, not news (the coin setting's default).
DEFAULT_MAX_EVENT_AGE_MS = 2_000


class SkipReason(enum.StrEnum):
    """Why an entry was not taken; stable strings, stored in the decision journal."""

    PANIC_LOCKED = "panic_locked"
    HALTED = "halted"
    DISABLED_FOR_DAY = "disabled_for_day"
    NOT_CONFIGURED = "not_configured"  # no coin row, or a coin row without an order size
    DISABLED = "disabled"
    BELOW_SIZE_THRESHOLD = "below_size_threshold"
    PM_MANAGED = "pm_managed"
    STALE_EVENT = "stale_event"  # the liquidation is older than the coin's max_event_age_ms
    STALE_PRICE = "stale_price"  # no Bybit price / klines, or too old
    NO_VWAP = "no_vwap"  # the coin's VWAP window holds no traded volume yet
    OFFSET_NOT_MET = "offset_not_met"
    IM_ABOVE_BLOCK = "im_above_block"
    IM_ABOVE_WARN = "im_above_warn"
    ALREADY_IN_POSITION = "already_in_position"
    MAX_POSITIONS = "max_positions"
    COOLDOWN = "cooldown"
    INSTRUMENT_UNKNOWN = "instrument_unknown"
    # From rounding.check_order_size (same strings):
    BELOW_MIN_QTY = rounding.BELOW_MIN_QTY
    QTY_OFF_STEP = rounding.QTY_OFF_STEP  # cannot happen (qty is rounded to the step); kept for completeness
    BELOW_MIN_NOTIONAL = rounding.BELOW_MIN_NOTIONAL
    ABOVE_MAX_MARKET_QTY = rounding.ABOVE_MAX_MARKET_QTY
    ABOVE_MAX_QTY = rounding.ABOVE_MAX_QTY


# The order the checks run in (the first failing one is reported).
SKIP_ORDER: tuple[SkipReason, ...] = tuple(SkipReason)


@dataclass(frozen=True, slots=True)
class CoinRule:
    """A snapshot of one ``trading.models.Coin`` row, in the units the decision uses.

    Percentages are percent (``Decimal("1.5")`` = 1.5 %), USDT amounts in USDT.
    Exactly one of ``order_size_usdt`` (margin per entry) and
    ``order_size_pct_equity`` is set (the model's ``clean()`` enforces it).
    """

    symbol: str
    enabled: bool
    long_offset_pct: Decimal
    short_offset_pct: Decimal
    min_liquidation_usdt: Decimal
    order_size_usdt: Decimal | None
    order_size_pct_equity: Decimal | None
    leverage: int
    take_profit_pct: Decimal
    stop_loss_pct: Decimal
    vwap_window_minutes: int
    entry_cooldown_seconds: int
    max_event_age_ms: int = DEFAULT_MAX_EVENT_AGE_MS
    # Derived once here instead of on every event.
    long_entry_factor: Decimal = field(init=False, repr=False, compare=False)
    short_entry_factor: Decimal = field(init=False, repr=False, compare=False)
    cooldown_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # price <= VWAP * (1 - long%/100) opens a long; price >= VWAP * (1 + short%/100) a short.
        object.__setattr__(self, "long_entry_factor", ONE - self.long_offset_pct / HUNDRED)
        object.__setattr__(self, "short_entry_factor", ONE + self.short_offset_pct / HUNDRED)
        object.__setattr__(self, "cooldown_ms", self.entry_cooldown_seconds * 1000)

    @classmethod
    def from_model(cls, coin: Any) -> CoinRule:
        """From a ``trading.models.Coin`` (or anything with its attributes)."""
        return cls(
            symbol=coin.symbol,
            enabled=bool(coin.enabled),
            long_offset_pct=_decimal(coin.long_offset_pct),
            short_offset_pct=_decimal(coin.short_offset_pct),
            min_liquidation_usdt=_decimal(coin.min_liquidation_usdt),
            order_size_usdt=_decimal_or_none(coin.order_size_usdt),
            order_size_pct_equity=_decimal_or_none(coin.order_size_pct_equity),
            leverage=int(coin.leverage),
            take_profit_pct=_decimal(coin.take_profit_pct),
            stop_loss_pct=_decimal(coin.stop_loss_pct),
            vwap_window_minutes=int(coin.vwap_window_minutes),
            entry_cooldown_seconds=int(coin.entry_cooldown_seconds),
            max_event_age_ms=int(coin.max_event_age_ms),
        )


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None or value == "" else _decimal(value)


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The account and the switches, as the engine last saw them.

    ``im_pct`` is the account's initial-margin ratio in percent; ``im_warn_pct``
    and ``im_block_pct`` are the risk settings' warn and reduce (block) levels.
    ``equity_usdt`` is the sizing base for %-of-equity coins.
    ``disabled_until_ms``: trading is off until then (daily target/stop), ms UTC.
    ``open_order_symbols``: symbols with an open (unfilled) entry order of ours.
    ``last_entry_ms``: per symbol, when the engine last placed an entry (ms UTC).
    """

    equity_usdt: Decimal
    im_pct: Decimal
    im_warn_pct: Decimal
    im_block_pct: Decimal
    max_open_positions: int
    panic_locked: bool = False
    halted: bool = False
    disabled_until_ms: int | None = None
    pm_symbols: frozenset[str] = frozenset()
    open_position_symbols: frozenset[str] = frozenset()
    open_order_symbols: frozenset[str] = frozenset()
    last_entry_ms: Mapping[str, int] = field(default_factory=dict)

    def with_entry(self, symbol: str, now_ms: int) -> AccountSnapshot:
        """The snapshot after placing an entry on ``symbol``: it has an open order and a fresh cooldown.

        The engine applies this the moment it sends the order, so the next
        liquidation (milliseconds later) cannot enter the same symbol again
        before the order and position streams catch up.
        """
        last_entry_ms = dict(self.last_entry_ms)
        last_entry_ms[symbol] = now_ms
        return replace(
            self,
            open_order_symbols=self.open_order_symbols | {symbol},
            last_entry_ms=last_entry_ms,
        )


class PriceView(Protocol):
    """One symbol's market as ``decide`` reads it (``trading.rules.vwap.SymbolMarket`` fits).

    ``last_price_ms``/``last_candle_ms``: local-clock ms when the last ticker /
    kline arrived.
    """

    @property
    def last_price(self) -> Decimal | None: ...

    @property
    def last_price_ms(self) -> int: ...

    @property
    def last_candle_ms(self) -> int: ...

    def vwap(self, window_minutes: int) -> Decimal | None: ...


class InstrumentRules(Protocol):
    """What ``decide`` needs of an instrument (``trading.instruments.Instrument`` fits)."""

    @property
    def qty_step(self) -> Decimal: ...

    @property
    def min_order_qty(self) -> Decimal: ...

    @property
    def max_order_qty(self) -> Decimal | None: ...

    @property
    def max_market_order_qty(self) -> Decimal | None: ...

    @property
    def min_notional_value(self) -> Decimal | None: ...

    @property
    def tick_size(self) -> Decimal: ...

    @property
    def is_trading(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """Place this market entry. ``qty`` is a multiple of ``qtyStep``; TP/SL are multiples of ``tickSize``.

    ``price`` is Bybit's last price the decision was made at (the gateway's
    ``reference_price``); TP/SL are computed from it, rounded toward the market
    (``round_take_profit``/``round_stop_loss``). ``vwap``, ``offset_pct`` (the
    coin's threshold) and ``deviation_pct`` (signed % of price from VWAP) and
    ``im_pct`` are for the journal. ``margin_usdt`` is the budget, ``notional_usdt``
    = ``qty * price`` after rounding.
    """

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    order_link_id: str
    leverage: int
    take_profit: Decimal | None
    stop_loss: Decimal
    vwap: Decimal
    offset_pct: Decimal
    deviation_pct: Decimal
    im_pct: Decimal
    margin_usdt: Decimal
    notional_usdt: Decimal
    event_id: str

    taken = True


@dataclass(frozen=True, slots=True)
class Skip:
    """No entry, for ``reason``. ``price``/``vwap`` are set once the market was read."""

    reason: SkipReason
    symbol: str
    event_id: str
    price: Decimal | None = None
    vwap: Decimal | None = None

    taken = False


class LiquidationLike(Protocol):
    """The fields of ``trading.events.LiquidationEvent`` that ``decide`` reads."""

    @property
    def symbol(self) -> str: ...

    @property
    def liquidated_side(self) -> str: ...

    @property
    def notional(self) -> Decimal: ...

    @property
    def event_id(self) -> str: ...

    @property
    def event_time(self) -> int: ...


def decide(
    event: LiquidationLike,
    *,
    coin: CoinRule | None,
    market: PriceView | None,
    account: AccountSnapshot,
    instrument: InstrumentRules | None,
    now_ms: int,
    max_price_age_ms: int = DEFAULT_MAX_PRICE_AGE_MS,
    max_candle_age_ms: int = DEFAULT_MAX_CANDLE_AGE_MS,
) -> Entry | Skip:
    """Entry or skip for one liquidation. ``now_ms``: the engine's clock, ms UTC."""
    symbol = event.symbol
    event_id = event.event_id

    # 1. Locks: panic, /kill, the daily target/stop.
    if account.panic_locked:
        return Skip(SkipReason.PANIC_LOCKED, symbol, event_id)
    if account.halted:
        return Skip(SkipReason.HALTED, symbol, event_id)
    if account.disabled_until_ms is not None and now_ms < account.disabled_until_ms:
        return Skip(SkipReason.DISABLED_FOR_DAY, symbol, event_id)

    # 2. Configuration.
    if coin is None or (coin.order_size_usdt is None and coin.order_size_pct_equity is None):
        return Skip(SkipReason.NOT_CONFIGURED, symbol, event_id)
    if not coin.enabled:
        return Skip(SkipReason.DISABLED, symbol, event_id)

    # 3. The liquidation: its size, whose symbol it is, its age.
    if event.notional < coin.min_liquidation_usdt:
        return Skip(SkipReason.BELOW_SIZE_THRESHOLD, symbol, event_id)
    if symbol in account.pm_symbols:
        return Skip(SkipReason.PM_MANAGED, symbol, event_id)
    # The event's age (see the module docstring for the clocks).
    if now_ms - event.event_time > coin.max_event_age_ms:
        return Skip(SkipReason.STALE_EVENT, symbol, event_id)

    # 4. Market: a current Bybit price and VWAP, and the offset.
    if market is None:
        return Skip(SkipReason.STALE_PRICE, symbol, event_id)
    price = market.last_price
    if (
        price is None
        or now_ms - market.last_price_ms > max_price_age_ms
        or now_ms - market.last_candle_ms > max_candle_age_ms
    ):
        return Skip(SkipReason.STALE_PRICE, symbol, event_id, price)
    vwap = market.vwap(coin.vwap_window_minutes)
    if vwap is None:
        return Skip(SkipReason.NO_VWAP, symbol, event_id, price)
    if event.liquidated_side == "long":
        if price > vwap * coin.long_entry_factor:
            return Skip(SkipReason.OFFSET_NOT_MET, symbol, event_id, price, vwap)
        side = Side.BUY
        offset_pct = coin.long_offset_pct
    elif event.liquidated_side == "short":
        if price < vwap * coin.short_entry_factor:
            return Skip(SkipReason.OFFSET_NOT_MET, symbol, event_id, price, vwap)
        side = Side.SELL
        offset_pct = coin.short_offset_pct
    else:
        raise ValueError(f"liquidated_side must be 'long' or 'short', got {event.liquidated_side!r}")

    # 5. Account guards.
    if account.im_pct >= account.im_block_pct:
        return Skip(SkipReason.IM_ABOVE_BLOCK, symbol, event_id, price, vwap)
    if account.im_pct >= account.im_warn_pct:
        return Skip(SkipReason.IM_ABOVE_WARN, symbol, event_id, price, vwap)
    if symbol in account.open_position_symbols or symbol in account.open_order_symbols:
        return Skip(SkipReason.ALREADY_IN_POSITION, symbol, event_id, price, vwap)
    # Pending entries count: each is about to become a position.
    if len(account.open_position_symbols | account.open_order_symbols) >= account.max_open_positions:
        return Skip(SkipReason.MAX_POSITIONS, symbol, event_id, price, vwap)
    last_entry = account.last_entry_ms.get(symbol)
    if last_entry is not None and now_ms - last_entry < coin.cooldown_ms:
        return Skip(SkipReason.COOLDOWN, symbol, event_id, price, vwap)

    # 6. Instrument.
    if instrument is None or not instrument.is_trading:
        return Skip(SkipReason.INSTRUMENT_UNKNOWN, symbol, event_id, price, vwap)

    # 7. Size: margin x leverage = notional, rounded down to the qty step.
    if coin.order_size_usdt is not None:
        margin = coin.order_size_usdt
    else:
        margin = account.equity_usdt * coin.order_size_pct_equity / HUNDRED
    if margin <= 0:
        # No equity to size from: nothing to buy.
        return Skip(SkipReason.BELOW_MIN_QTY, symbol, event_id, price, vwap)
    qty = qty_for_notional(notional=margin * coin.leverage, price=price, qty_step=instrument.qty_step)
    size_problem = check_order_size(qty=qty, price=price, limits=instrument, is_market=True)
    if size_problem is not None:
        return Skip(SkipReason(size_problem), symbol, event_id, price, vwap)

    tick = instrument.tick_size
    if side is Side.BUY:
        take_profit = round_take_profit(
            price * (ONE + coin.take_profit_pct / HUNDRED), tick, position_side=side
        )
        stop_loss = round_stop_loss(price * (ONE - coin.stop_loss_pct / HUNDRED), tick, position_side=side)
    else:
        take_profit = round_take_profit(
            price * (ONE - coin.take_profit_pct / HUNDRED), tick, position_side=side
        )
        stop_loss = round_stop_loss(price * (ONE + coin.stop_loss_pct / HUNDRED), tick, position_side=side)
    return Entry(
        symbol=symbol,
        side=side,
        qty=qty,
        price=price,
        order_link_id=order_link_id(strategy=STRATEGY, symbol=symbol, decision_key=event_id, leg=ENTRY_LEG),
        leverage=coin.leverage,
        # A short's take-profit at >= 100 % below entry would be price 0, which Bybit reads as "no TP".
        take_profit=take_profit if take_profit > 0 else None,
        stop_loss=stop_loss,
        vwap=vwap,
        offset_pct=offset_pct,
        deviation_pct=(price - vwap) / vwap * HUNDRED,
        im_pct=account.im_pct,
        margin_usdt=margin,
        notional_usdt=qty * price,
        event_id=event_id,
    )
