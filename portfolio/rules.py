"""Portfolio momentum (PM): the pure rules. Plain data in, plain data out, no I/O.

The strategy, longs only:

* **Momentum** of a symbol is its % change over the lookback, from hourly candles:
  ``(last close - close lookback candles earlier) / that close x 100``. With hourly
  candles oldest first, the reference is ``closes[-(lookback + 1)]``; the newest
  candle may still be open, its close is the last price.
* **Ranking.** Symbols with a momentum of at least ``min_momentum_pct`` are ranked,
  highest first (ties by symbol name, so a scan is repeatable); symbols PM already
  holds are not candidates, and only ``max_positions - held`` are entered (the scan
  walks further down the ranking when a chosen symbol can't be entered).
* **Sizing.** The budget is split into equal legs: ``budget / (max_positions x
  (1 + pyramid_max_adds))``. An entry is one leg and every pyramid add is one leg,
  so a full book (every position with every add) is exactly the budget. Each leg is
  also capped by the budget left (``budget - committed``), so the book never goes
  above the budget even after the settings shrink. At 1x leverage notional = margin.
  The qty is sized at the price plus ``SLIPPAGE_ALLOWANCE`` (a market buy fills a
  little above the last price) and rounded down to the qty step.
* **Pyramiding.** Add one leg when the price is at least ``pyramid_step_pct`` above
  the fill price of the newest leg, at most ``pyramid_max_adds`` times.
* **Trailing stop.** Exit the whole position when the price is at or below
  ``high_water x (1 - trailing_stop_pct / 100)``, the high-water mark being the
  highest price seen since entry (the new price included).
* **The exchange's trailing stop** (the backstop while the workers are down): Bybit's own
  trailing stop on the position, a price distance of ``reference x trailing_stop_pct x
  EXCHANGE_TRAIL_FACTOR / 100`` rounded up to the tick, the reference being the high-water
  mark (the fill price at entry). A fixed distance is a smaller % as the price rises, so it
  is set again once it is no longer within ``EXCHANGE_TRAIL_BAND`` of PM's own %.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from trading.rules.rounding import UP, LotSizeRules, check_order_size, qty_for_notional, round_price

HUNDRED = Decimal("100")
ONE = Decimal("1")
USDT_CENT = Decimal("0.0001")  # legs are cut down to 4 decimals of USDT, like the settings

# A market buy fills above the last price (1 bp on the simulator, more on a thin book):
# legs are sized at price x (1 + this), so the fill stays within the leg's USDT.
SLIPPAGE_ALLOWANCE = Decimal("0.002")

# Bybit's trailing stop on a PM position trails a fifth wider than PM's own, so the two do not
# race: PM's minute check exits first, the exchange's only when no worker looks (a 5 % trail
# has a 6 % backstop). It is set again when its distance, as a % of the high-water mark, has
# left 1.1-1.3 x PM's %, i.e. after about a 9 % rise.
EXCHANGE_TRAIL_FACTOR = Decimal("1.2")
EXCHANGE_TRAIL_BAND = (Decimal("1.1"), Decimal("1.3"))

# The kline interval PM reads (Bybit's "60" = one hour).
KLINE_INTERVAL = "60"

# Skip reasons (stable strings: the journal stores them).
NO_HISTORY = "no_history"
BELOW_MIN_MOMENTUM = "below_min_momentum"
NO_FREE_SLOT = "no_free_slot"
BUDGET_EXHAUSTED = "budget_exhausted"
# An enabled allowlist symbol that is also an enabled liquidation coin (a database from before
# the models refused it): the engine's, never PM's (trading.claims).
LIQUIDATION_COIN = "liquidation_coin"


def momentum_pct(*, closes: Sequence[Decimal], lookback: int) -> Decimal | None:
    """% change from ``closes[-(lookback + 1)]`` to ``closes[-1]``; ``None`` without that much history.

    ``closes`` are candle closes, oldest first. Exact (no rounding): the journal shows it.
    """
    if lookback < 1:
        raise ValueError(f"lookback must be at least 1, got {lookback}")
    if len(closes) < lookback + 1:
        return None
    reference = closes[-(lookback + 1)]
    if reference <= 0:
        return None
    return (closes[-1] - reference) / reference * HUNDRED


@dataclass(frozen=True)
class Ranking:
    """A scan's choice: ``enter`` in order (best first), every other symbol with its reason."""

    enter: list[tuple[str, Decimal]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    ranked: list[tuple[str, Decimal]] = field(default_factory=list)  # all qualifying, best first


def rank(
    *,
    momenta: Mapping[str, Decimal | None],
    min_momentum_pct: Decimal,
    held: Iterable[str],
    max_positions: int,
) -> Ranking:
    """Pick the symbols to enter.

    ``momenta``: symbol -> momentum % (``None``: not enough history). ``held``: every
    symbol PM holds (on the allowlist or not: each takes a slot). Held symbols are
    neither entered nor reported as skipped.
    """
    held = set(held)
    free_slots = max(0, max_positions - len(held))
    skipped: dict[str, str] = {}
    qualifying: list[tuple[str, Decimal]] = []
    for symbol, momentum in momenta.items():
        if symbol in held:
            continue
        if momentum is None:
            skipped[symbol] = NO_HISTORY
        elif momentum < min_momentum_pct:
            skipped[symbol] = BELOW_MIN_MOMENTUM
        else:
            qualifying.append((symbol, momentum))
    qualifying.sort(key=lambda item: (-item[1], item[0]))
    enter = qualifying[:free_slots]
    for symbol, _ in qualifying[free_slots:]:
        skipped[symbol] = NO_FREE_SLOT
    return Ranking(enter=enter, skipped=skipped, ranked=qualifying)


def leg_usdt(*, budget_usdt: Decimal, max_positions: int, pyramid_max_adds: int) -> Decimal:
    """One leg's notional: the budget over every leg a full book can hold, cut down to 0.0001 USDT."""
    if max_positions < 1:
        raise ValueError(f"max_positions must be at least 1, got {max_positions}")
    legs = max_positions * (1 + pyramid_max_adds)
    return (budget_usdt / legs).quantize(USDT_CENT, rounding=ROUND_DOWN)


@dataclass(frozen=True)
class LegSize:
    """A leg to send (``reason`` is ``None``), or why not (``qty`` is zero)."""

    qty: Decimal
    notional: Decimal  # qty x price: what the leg commits at the decision price
    reason: str | None = None


def leg_size(
    *,
    budget_usdt: Decimal,
    committed_usdt: Decimal,
    leg_usdt: Decimal,
    price: Decimal,
    limits: LotSizeRules,
) -> LegSize:
    """The qty of one leg (entry or add) at ``price``.

    The leg's USDT is ``min(leg_usdt, budget - committed)``; the qty is that over
    ``price x (1 + SLIPPAGE_ALLOWANCE)``, rounded down to the qty step. A leg the
    instrument would refuse (below min qty or min notional, above max) is not sent:
    the reason is ``budget_exhausted`` when no budget is left, else the rounding
    module's code (``below_min_qty``, ``below_min_notional``, ...).
    """
    room = budget_usdt - committed_usdt
    if room <= 0:
        return LegSize(Decimal("0"), Decimal("0"), BUDGET_EXHAUSTED)
    usdt = min(leg_usdt, room)
    qty = qty_for_notional(notional=usdt, price=price * (ONE + SLIPPAGE_ALLOWANCE), qty_step=limits.qty_step)
    reason = check_order_size(qty=qty, price=price, limits=limits, is_market=True)
    if reason is not None:
        return LegSize(Decimal("0"), Decimal("0"), reason)
    return LegSize(qty, qty * price)


def pyramid_due(
    *, price: Decimal, last_add_price: Decimal, pyramid_step_pct: Decimal, adds_made: int, max_adds: int
) -> bool:
    """Whether to add a leg: fewer than ``max_adds`` so far and ``price >= last_add_price x (1 + step %)``."""
    if adds_made >= max_adds:
        return False
    return price >= last_add_price * (ONE + pyramid_step_pct / HUNDRED)


def high_water(*, previous: Decimal | None, price: Decimal) -> Decimal:
    """The highest price since entry, ``price`` included."""
    return price if previous is None or price > previous else previous


def trailing_stop_price(*, high_water_price: Decimal, trailing_stop_pct: Decimal) -> Decimal:
    """The exit level of a long: ``high_water x (1 - pct / 100)``, exact."""
    return high_water_price * (ONE - trailing_stop_pct / HUNDRED)


def trailing_stop_hit(*, price: Decimal, high_water_price: Decimal, trailing_stop_pct: Decimal) -> bool:
    """Whether a long exits: ``price`` at or below the trailing level of the (updated) high-water mark."""
    peak = high_water(previous=high_water_price, price=price)
    return price <= trailing_stop_price(high_water_price=peak, trailing_stop_pct=trailing_stop_pct)


def scan_due(*, last_scan_at: datetime | None, now: datetime, interval_minutes: int) -> bool:
    """A scan is due when none ran yet, or the last one started at least ``interval_minutes`` ago."""
    if last_scan_at is None:
        return True
    return now - last_scan_at >= timedelta(minutes=interval_minutes)


def time_bucket(now: datetime) -> str:
    """The UTC minute of ``now`` as ``YYYYMMDDTHHMM``: the time part of a decision's orderLinkId key."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M")


def exchange_trail_distance(
    *, reference_price: Decimal, trailing_stop_pct: Decimal, tick_size: Decimal
) -> Decimal:
    """Bybit ``trailingStop`` for a PM long: ``reference x pct x EXCHANGE_TRAIL_FACTOR / 100``,
    rounded UP to the tick (never tighter than meant)."""
    distance = reference_price * trailing_stop_pct * EXCHANGE_TRAIL_FACTOR / HUNDRED
    return max(round_price(distance, tick_size, direction=UP), tick_size)


def exchange_trail_due(
    *, distance: Decimal | None, high_water_price: Decimal, trailing_stop_pct: Decimal
) -> bool:
    """Whether the exchange's trailing stop must be set (again): there is none, or its distance
    as a % of the high-water mark has left ``EXCHANGE_TRAIL_BAND`` x PM's own %."""
    if not distance or high_water_price <= 0:
        return True
    low, high = EXCHANGE_TRAIL_BAND
    pct = distance / high_water_price * HUNDRED
    return not trailing_stop_pct * low <= pct <= trailing_stop_pct * high
