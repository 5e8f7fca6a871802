"""The simulator's instrument table: linear USDT perpetuals with Bybit-like filters.

The filters are close to Bybit's live values for these symbols (early 2025); they are
what an order is validated against, so a client that respects them here respects
them on Bybit. Symbols outside the table (a replay of other coins) get filters
derived from the recorded prices and sizes.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from .numbers import ONE


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    symbol_id: int
    tick_size: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_market_qty: Decimal
    max_leverage: Decimal
    # Maintenance margin rate of the lowest risk tier (Bybit: 0.5 % BTC/ETH, 1 % most alts).
    maintenance_rate: Decimal
    start_price: Decimal
    min_notional: Decimal = Decimal("5")
    launch_time_ms: int = 1585526400000

    @property
    def base_coin(self) -> str:
        return self.symbol[: -len("USDT")]

    @property
    def price_scale(self) -> int:
        return max(0, -self.tick_size.as_tuple().exponent)


def _instrument(symbol_id, symbol, tick, step, max_qty, max_market, leverage, mmr, price):
    return Instrument(
        symbol=symbol,
        symbol_id=symbol_id,
        tick_size=Decimal(tick),
        qty_step=Decimal(step),
        min_qty=Decimal(step),
        max_qty=Decimal(max_qty),
        max_market_qty=Decimal(max_market),
        max_leverage=Decimal(leverage),
        maintenance_rate=Decimal(mmr),
        start_price=Decimal(price),
    )


DEFAULT_INSTRUMENTS: dict[str, Instrument] = {
    inst.symbol: inst
    for inst in (
        _instrument(5, "BTCUSDT", "0.10", "0.001", "1190.000", "500.000", "100.00", "0.005", "97000.00"),
        _instrument(6, "ETHUSDT", "0.01", "0.01", "7240.00", "3620.00", "100.00", "0.005", "3300.00"),
        _instrument(7, "SOLUSDT", "0.010", "0.1", "79770.0", "5000.0", "100.00", "0.01", "180.000"),
        _instrument(8, "XRPUSDT", "0.0001", "1", "2000000", "400000", "75.00", "0.01", "2.5000"),
        _instrument(9, "DOGEUSDT", "0.00001", "1", "15000000", "3000000", "75.00", "0.01", "0.33000"),
        _instrument(10, "ADAUSDT", "0.0001", "1", "2000000", "400000", "75.00", "0.01", "0.9500"),
        _instrument(11, "BNBUSDT", "0.01", "0.01", "2700.00", "500.00", "75.00", "0.01", "680.00"),
        _instrument(12, "LINKUSDT", "0.001", "0.1", "50000.0", "20000.0", "75.00", "0.01", "20.000"),
        _instrument(13, "AVAXUSDT", "0.001", "0.1", "30000.0", "12000.0", "75.00", "0.01", "35.000"),
        _instrument(14, "LTCUSDT", "0.01", "0.1", "9000.0", "3000.0", "75.00", "0.01", "110.00"),
    )
}


def _decimals(text: str) -> int:
    return len(text.partition(".")[2]) if "." in text else 0


def derived_instrument(
    symbol: str, symbol_id: int, prices: Iterable[str], sizes: Iterable[str], start_price: Decimal
) -> Instrument:
    """Filters for a replayed symbol: the table's, or derived from recorded price and size strings.

    The tick is the finest price increment seen (Binance prints prices with the
    contract's tick decimals); the qty step is the finest size increment seen.
    Max quantities allow about 5 million USDT per order, a typical mid-cap limit.
    """
    if symbol in DEFAULT_INSTRUMENTS:
        return replace(DEFAULT_INSTRUMENTS[symbol], start_price=start_price)
    price_places = max((_decimals(p) for p in prices), default=2)
    qty_places = max((_decimals(s) for s in sizes), default=0)
    tick = ONE.scaleb(-price_places)
    step = ONE.scaleb(-qty_places)
    max_qty = max(step, (Decimal("5000000") / max(start_price, tick)).quantize(step))
    return Instrument(
        symbol=symbol,
        symbol_id=symbol_id,
        tick_size=tick,
        qty_step=step,
        min_qty=step,
        max_qty=max_qty,
        max_market_qty=max(step, (max_qty / 5).quantize(step)),
        max_leverage=Decimal("50.00"),
        maintenance_rate=Decimal("0.01"),
        start_price=start_price,
    )
