"""Money, percentages and times for people: what the dashboard, Telegram and the API's
``*_text`` fields print. Pure; decimals in, text out, "" when the value is unknown."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

CENTS = Decimal("0.01")


def decimal_or_none(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def money_text(value, *, signed: bool = False) -> str:
    """USDT for people: two decimals (half-even), thousands separated; "" when unknown."""
    number = decimal_or_none(value)
    if number is None:
        return ""
    if not number.is_finite():
        return str(number)
    text = f"{number.quantize(CENTS, rounding=ROUND_HALF_EVEN):,}"
    return f"+{text}" if signed and number > 0 else text


def pct_text(value, *, signed: bool = False) -> str:
    """A percentage for people, two decimals ("12.35"); infinite IM % as "∞"."""
    number = decimal_or_none(value)
    if number is None:
        return ""
    if not number.is_finite():
        return "∞"
    text = str(number.quantize(CENTS, rounding=ROUND_HALF_EVEN))
    return f"+{text}" if signed and number > 0 else text


def plain_text(value: Decimal | None) -> str | None:
    """A settings decimal without trailing zeros ("10", "2.5")."""
    if value is None:
        return None
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def utc_text(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime(fmt)
