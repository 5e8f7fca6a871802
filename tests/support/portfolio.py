"""The portfolio strategy's test clock and market: the fixed `NOW`, the symbols' start prices,
and the allowlist."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)

# The simulator's still market starts every symbol here and keeps 24 h of flat history
# at that price, so a symbol's 24 h momentum is its price now against these.
START = {
    "XRPUSDT": "2.5000",
    "DOGEUSDT": "0.33000",
    "ADAUSDT": "0.9500",
    "LINKUSDT": "20.000",
    "AVAXUSDT": "35.000",
    "LTCUSDT": "110.00",
}


def allow(*symbols: str, enabled: bool = True) -> None:
    from portfolio.models import AllowlistEntry  # a model: imported once Django is set up

    for symbol in symbols:
        AllowlistEntry.objects.update_or_create(symbol=symbol, defaults={"enabled": enabled})
