"""Instrument rules (lot size, tick size, leverage) parsed in one place, and a per-process cache.

Bybit revises the max-qty values on the 3rd and 17th of each month and lists
new symbols at any time, so the cache is refreshed daily rather than kept
forever (see ``InstrumentCache.is_stale``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from trading.errors import MalformedAnswer, UnknownInstrument

TRADING_STATUS = "Trading"
# A venue number: decimal text, signed, perhaps with an exponent. Not NaN, Infinity, spaces,
# underscores or other digits than ASCII, all of which Decimal() would accept.
_VENUE_NUMBER = re.compile(r"-?[0-9]{1,30}(?:\.[0-9]{1,30})?(?:[eE][-+]?[0-9]{1,2})?")
# No price, quantity or balance comes near this; above it the answer is corrupt.
MAX_VENUE_NUMBER = Decimal("1e18")


def decimal_or_none(value: Any, name: str = "number") -> Decimal | None:
    """A venue number (Bybit sends strings; a JSON integer is taken too) as ``Decimal``;
    ``""``/``None`` (Bybit's "no value") as ``None``. Anything else is a ``MalformedAnswer``."""
    if value is None or value == "":
        return None
    if type(value) is int:  # not bool, which is an int too
        if abs(value) > MAX_VENUE_NUMBER:
            raise MalformedAnswer(f"{name} is out of range")
        return Decimal(value)
    if type(value) is not str or not _VENUE_NUMBER.fullmatch(value):
        raise MalformedAnswer(f"{name} is not a number")
    number = Decimal(value)
    if abs(number) > MAX_VENUE_NUMBER:
        raise MalformedAnswer(f"{name} is out of range")
    return number


def _required_decimal(section: Mapping[str, Any], name: str, symbol: str) -> Decimal:
    """A filter that must be there and positive (a step or tick of 0 would divide by zero)."""
    value = decimal_or_none(section.get(name), name)
    if value is None or value <= 0:
        raise MalformedAnswer(f"instruments-info row for {symbol} has no positive {name}")
    return value


def _optional_limit(section: Mapping[str, Any], name: str) -> Decimal | None:
    value = decimal_or_none(section.get(name), name)
    if value is not None and value < 0:
        raise MalformedAnswer(f"instruments-info {name} is negative")
    return value


@dataclass(frozen=True, slots=True)
class Instrument:
    """One linear perpetual's trading rules. Quantities in base coin, prices and notional in USDT.

    ``None`` for a maximum or ``min_notional_value`` means the venue sent no
    value, i.e. no limit of that kind.
    """

    symbol: str
    qty_step: Decimal
    min_order_qty: Decimal
    max_order_qty: Decimal | None  # limit / PostOnly orders
    max_market_order_qty: Decimal | None
    min_notional_value: Decimal | None
    tick_size: Decimal
    max_leverage: Decimal | None
    status: str

    @property
    def is_trading(self) -> bool:
        return self.status == TRADING_STATUS


def parse_instrument(row: Mapping[str, Any]) -> Instrument:
    """An ``Instrument`` from one ``/v5/market/instruments-info`` (linear) ``list`` row;
    ``MalformedAnswer`` when it lacks a symbol or a positive step, minimum or tick."""
    if not isinstance(row, Mapping):
        raise MalformedAnswer("instruments-info row is not an object")
    symbol = row.get("symbol")
    if type(symbol) is not str or not symbol:
        raise MalformedAnswer("instruments-info row without a symbol")
    lot, price, leverage = (
        row.get(name) or {} for name in ("lotSizeFilter", "priceFilter", "leverageFilter")
    )
    status = row.get("status") or ""
    if not (isinstance(lot, Mapping) and isinstance(price, Mapping) and isinstance(leverage, Mapping)):
        raise MalformedAnswer(f"instruments-info row for {symbol}: a filter is not an object")
    if type(status) is not str:
        raise MalformedAnswer(f"instruments-info row for {symbol}: status is not text")
    return Instrument(
        symbol=symbol,
        qty_step=_required_decimal(lot, "qtyStep", symbol),
        min_order_qty=_required_decimal(lot, "minOrderQty", symbol),
        max_order_qty=_optional_limit(lot, "maxOrderQty"),
        max_market_order_qty=_optional_limit(lot, "maxMktOrderQty"),
        min_notional_value=_optional_limit(lot, "minNotionalValue"),
        tick_size=_required_decimal(price, "tickSize", symbol),
        max_leverage=_optional_limit(leverage, "maxLeverage"),
        status=status,
    )


class InstrumentCache:
    """All linear instruments by symbol, loaded through ``load`` (which must page to the end).

    Reads are lock-free: a refresh builds a new dict and swaps it in with one
    assignment, so a reader sees either the old or the new table, never half.
    """

    def __init__(
        self,
        *,
        load: Callable[[], Iterable[Instrument]],
        max_age: timedelta = timedelta(days=1),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._load = load
        self._clock = clock
        self.max_age = max_age
        self._by_symbol: dict[str, Instrument] = {}
        self.loaded_at: datetime | None = None
        self._refresh_lock = threading.Lock()

    def refresh(self) -> int:
        """Reload every instrument now; returns how many were loaded."""
        with self._refresh_lock:
            table = {instrument.symbol: instrument for instrument in self._load()}
            self._by_symbol = table
            self.loaded_at = self._clock()
            return len(table)

    def is_stale(self, *, now: datetime | None = None) -> bool:
        """Never loaded, or loaded longer than ``max_age`` ago."""
        if self.loaded_at is None:
            return True
        return (now or self._clock()) - self.loaded_at >= self.max_age

    def refresh_if_stale(self, *, now: datetime | None = None) -> bool:
        """Refresh when stale; returns whether it did. Call it from a loop's idle step, not per order."""
        if self.is_stale(now=now):
            self.refresh()
            return True
        return False

    def get(self, symbol: str) -> Instrument:
        """The instrument for ``symbol``; loads the table on first use.

        Raises ``UnknownInstrument`` if the venue does not list it.
        """
        if self.loaded_at is None:
            self.refresh()
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise UnknownInstrument(symbol) from None

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __len__(self) -> int:
        return len(self._by_symbol)

    def symbols(self) -> list[str]:
        return sorted(self._by_symbol)

    def all(self) -> list[Instrument]:
        return [self._by_symbol[symbol] for symbol in sorted(self._by_symbol)]
