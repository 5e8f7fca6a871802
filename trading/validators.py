"""Field validators shared by models, admin forms, the API and the importers."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# A linear USDT perpetual on Bybit: base coin letters/digits, then USDT
# (e.g. BTCUSDT, 1000PEPEUSDT). Dated futures (BTCUSDT-27DEC24) are not perpetuals.
LINEAR_USDT_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}USDT$")


BARE_COIN = re.compile(r"^[A-Z0-9]{2,20}$")
# Quote currencies that are not ours: "BTCUSD" is an inverse contract, not the coin "BTCUSD".
OTHER_QUOTES = ("USD", "USDC", "PERP")


def normalise_symbol(raw: str) -> str:
    """`btc`, `BTC`, `BTCUSDT`, ` btcusdt ` -> `BTCUSDT` (the liquidation-hunter bots accept bare coins).

    Anything else is returned as written, so validation names it instead of guessing.
    """
    symbol = (raw or "").strip().upper()
    if BARE_COIN.match(symbol) and not symbol.endswith("USDT") and not symbol.endswith(OTHER_QUOTES):
        symbol += "USDT"
    return symbol


def validate_linear_usdt_symbol(value: str) -> None:
    if value != value.strip().upper():
        raise ValidationError("Symbol must be upper case without spaces, e.g. BTCUSDT.", code="symbol_case")
    if not LINEAR_USDT_SYMBOL.match(value):
        raise ValidationError(
            f"{value!r} is not a USDT perpetual symbol (expected e.g. BTCUSDT).", code="symbol_format"
        )
