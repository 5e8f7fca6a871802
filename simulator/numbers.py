"""Decimal helpers: the one place where the simulator turns text into numbers and back.

Bybit sends every price, quantity and money value as a string, so the simulator
keeps them as `Decimal` built from strings and formats them back as plain strings
(never exponent notation, never floats).
"""

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal, InvalidOperation

ZERO = Decimal("0")
ONE = Decimal("1")
# Money values (fees, PnL, balances) are shown with at most 8 decimals, like Bybit's
# wallet answers ("3.31216591").
MONEY_PLACES = Decimal("0.00000001")
RATE_PLACES = Decimal("0.0001")


class NumberError(ValueError):
    """A request field that should hold a decimal number does not."""


def parse_decimal(value, field: str) -> Decimal:
    """Build a Decimal from a request value (str or int; floats are refused as inexact)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise NumberError(f"{field} must be a string number")
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str) or not value.strip():
        raise NumberError(f"{field} must be a string number")
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise NumberError(f"{field} is not a number: {value!r}") from None
    if not number.is_finite():
        raise NumberError(f"{field} is not a finite number: {value!r}")
    return number


def plain(number: Decimal) -> str:
    """Format without exponent and without trailing zeros: Decimal("1E+1") -> "10"."""
    if number == 0:
        return "0"
    text = format(number.normalize(), "f")
    return text


def money(number: Decimal) -> str:
    """Money value rounded half-even to 8 decimals, trailing zeros stripped."""
    return plain(number.quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN))


def rate(number: Decimal) -> str:
    """A ratio such as accountIMRate: Bybit shows 4 decimals ("0.0127")."""
    return plain(number.quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN))


def fixed(number: Decimal, step: Decimal) -> str:
    """Show a price or qty with the step's decimals: 66666.6 with tick 0.10 -> "66666.60"."""
    exponent = step.as_tuple().exponent
    quantum = ONE if exponent >= 0 else ONE.scaleb(exponent)
    return str(number.quantize(quantum, rounding=ROUND_HALF_EVEN))


def round_to_step(number: Decimal, step: Decimal, rounding=ROUND_DOWN) -> Decimal:
    """Round to a multiple of step (a tick size or a qty step) with an explicit direction."""
    return (number / step).to_integral_value(rounding=rounding) * step


def is_multiple(number: Decimal, step: Decimal) -> bool:
    return number % step == 0


__all__ = [
    "ZERO",
    "ONE",
    "NumberError",
    "parse_decimal",
    "plain",
    "money",
    "rate",
    "fixed",
    "round_to_step",
    "is_multiple",
    "ROUND_DOWN",
    "ROUND_UP",
    "ROUND_HALF_EVEN",
]
