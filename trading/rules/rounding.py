"""Lot and tick rounding, and the pre-send order size check.

Conventions (the only rounding in the project; everything else calls these):

* **Quantities round DOWN** to a multiple of ``qtyStep``. Rounding a quantity up
  could open more than the budget allows or make a reduce-only close larger
  than the position (Bybit 110017), so it is never done implicitly.
  ``smallest_valid_qty`` is the one place that rounds *up*, on purpose, to
  reach the venue minimums.
* **Prices round to a multiple of ``tickSize`` in an explicit direction**
  (``UP`` = toward +infinity, ``DOWN`` = toward -infinity; prices are positive,
  so that is also away from / toward zero). Which direction is safe depends on
  what the price is for, so the helpers below name it:

  ============================  ======  ======  =====================================
  price                         long    short   why
  ============================  ======  ======  =====================================
  stop-loss trigger             UP      DOWN    toward the market: exits sooner, loses less
  take-profit trigger           DOWN    UP      toward the market: fills sooner, never missed by a tick
  limit price of an order       Buy: DOWN / Sell: UP  never pay more / sell for less than decided
  ============================  ======  ======  =====================================

  freqtrade's ``price_to_precision`` rounds stops the same way (up for longs,
  down for shorts).

All inputs are ``Decimal`` built from strings; results keep the exponent of the
step, so ``round_qty(Decimal("1.23456"), Decimal("0.001"))`` is ``Decimal("1.234")``
and serialises exactly as Bybit expects.
"""

from __future__ import annotations

import enum
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Protocol

from trading.rules import Side


class Rounding(enum.Enum):
    """Direction to round a price to its tick."""

    UP = ROUND_CEILING
    DOWN = ROUND_FLOOR


UP = Rounding.UP
DOWN = Rounding.DOWN

# The arithmetic of rounding is exact. Python's default context keeps 28 digits: it would round
# a quotient before it is floored, and it raises InvalidOperation when a result needs more digits
# (1e16 USDT at a 1e-12 price on a 1e-12 step is 1e40 steps). Operands within the parsers' range
# (<= 1e15, <= 20 decimals) need at most about 80; the traps stay Python's defaults.
_EXACT = Context(prec=120)

# Reason codes for refusing an order before it is sent. They are stable
# strings because the decision journal stores and shows them.
BELOW_MIN_QTY = "below_min_qty"
BELOW_MIN_NOTIONAL = "below_min_notional"
ABOVE_MAX_QTY = "above_max_qty"
ABOVE_MAX_MARKET_QTY = "above_max_market_qty"
QTY_OFF_STEP = "qty_off_step"
PRICE_OFF_TICK = "price_off_tick"


class LotSizeRules(Protocol):
    """What the size check needs from an instrument (``trading.instruments.Instrument`` fits).

    ``None`` means the venue sent no value: no limit of that kind.
    """

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


def round_to_step(value: Decimal, step: Decimal, *, direction: Rounding) -> Decimal:
    """``value`` rounded to a multiple of ``step`` in ``direction``; keeps the step's exponent."""
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    units = _EXACT.divide(value, step).to_integral_value(rounding=direction.value)
    # quantize: a division can leave an exponent like 5E+2, and 5E+2 * 0.01 prints "5";
    # the result must print with the step's decimals ("5.00"). Exact, since it is a multiple.
    return _EXACT.quantize(_EXACT.multiply(units, step), step)


def round_qty(qty: Decimal, qty_step: Decimal) -> Decimal:
    """``qty`` rounded DOWN to a multiple of ``qty_step`` (never above the input)."""
    if qty < 0:
        raise ValueError(f"quantities are positive; got {qty}")
    return round_to_step(qty, qty_step, direction=DOWN)


def round_price(price: Decimal, tick_size: Decimal, *, direction: Rounding) -> Decimal:
    """``price`` rounded to a multiple of ``tick_size`` in the given direction."""
    if price < 0:
        raise ValueError(f"prices are positive; got {price}")
    return round_to_step(price, tick_size, direction=direction)


def stop_loss_rounding(*, position_side: Side) -> Rounding:
    """A stop rounds toward the market: up for a long, down for a short."""
    return UP if position_side is Side.BUY else DOWN


def take_profit_rounding(*, position_side: Side) -> Rounding:
    """A take-profit rounds toward the market: down for a long, up for a short."""
    return DOWN if position_side is Side.BUY else UP


def limit_price_rounding(*, order_side: Side) -> Rounding:
    """A buy limit rounds down (never pay more), a sell limit up (never sell for less)."""
    return DOWN if order_side is Side.BUY else UP


def round_stop_loss(price: Decimal, tick_size: Decimal, *, position_side: Side) -> Decimal:
    return round_price(price, tick_size, direction=stop_loss_rounding(position_side=position_side))


def round_take_profit(price: Decimal, tick_size: Decimal, *, position_side: Side) -> Decimal:
    return round_price(price, tick_size, direction=take_profit_rounding(position_side=position_side))


def round_limit_price(price: Decimal, tick_size: Decimal, *, order_side: Side) -> Decimal:
    return round_price(price, tick_size, direction=limit_price_rounding(order_side=order_side))


def is_multiple_of(value: Decimal, step: Decimal) -> bool:
    return _EXACT.remainder(value, step) == 0


def qty_for_notional(*, notional: Decimal, price: Decimal, qty_step: Decimal) -> Decimal:
    """The largest step multiple whose value at ``price`` is at most ``notional`` (USDT)."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    return round_qty(_EXACT.divide(notional, price), qty_step)


def smallest_valid_qty(*, price: Decimal, limits: LotSizeRules) -> Decimal:
    """The smallest step multiple that meets both ``minOrderQty`` and ``minNotionalValue`` at ``price``.

    Rounds UP on purpose: it answers "what must I send at least", not "what fits a budget".
    """
    qty = limits.min_order_qty
    if limits.min_notional_value is not None and price > 0:
        qty = max(qty, _EXACT.divide(limits.min_notional_value, price))
    return round_to_step(qty, limits.qty_step, direction=UP)


def check_order_size(
    *,
    qty: Decimal,
    price: Decimal | None,
    limits: LotSizeRules,
    is_market: bool,
    reduce_only: bool = False,
) -> str | None:
    """Why Bybit would refuse this order's size, as a reason code; ``None`` if it is fine.

    ``price`` is the limit price, or for a market order the price the decision
    was made at; ``None`` skips the notional check (the caller could not know it).

    Reduce-only orders skip the notional and maximum checks: Bybit splits an
    oversized reduce-only order itself, and a close must never be refused
    because the position shrank in value below the opening minimum.
    """
    if qty < limits.min_order_qty or qty <= 0:
        return BELOW_MIN_QTY
    if not is_multiple_of(qty, limits.qty_step):
        return QTY_OFF_STEP
    if reduce_only:
        return None
    if (
        price is not None
        and limits.min_notional_value is not None
        and _EXACT.multiply(qty, price) < limits.min_notional_value
    ):
        return BELOW_MIN_NOTIONAL
    if is_market and limits.max_market_order_qty is not None and qty > limits.max_market_order_qty:
        return ABOVE_MAX_MARKET_QTY
    if limits.max_order_qty is not None and qty > limits.max_order_qty:
        return ABOVE_MAX_QTY
    return None


def check_price_tick(*, price: Decimal, tick_size: Decimal) -> str | None:
    """``PRICE_OFF_TICK`` if ``price`` is not a multiple of ``tick_size``, else ``None``."""
    if price <= 0 or not is_multiple_of(price, tick_size):
        return PRICE_OFF_TICK
    return None
