"""Strict checks shared by the venue parsers: one JSON object per frame, numbers, times, symbols, sides.

Pure: no logging, no I/O. Anything off raises ``MalformedMessage`` with a short reason.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from trading.events import MalformedMessage, UnsupportedSymbol

# A liquidation message is ~250 bytes and a Bybit batch a few KB; the websocket
# layer already caps frames at 1 MiB, this guards callers that parse other sources.
MAX_MESSAGE_CHARS = 1 << 20
# No real price or quantity comes near this; anything above is corruption.
MAX_NUMBER = Decimal("1e15")
# Venue times are ms since the epoch; same absurdity bound as numbers.
MAX_TIMESTAMP_MS = 10**15
# Plain decimal strings only: no sign, exponent, NaN/Infinity, spaces or
# underscores (all of which Decimal() would accept).
_NUMBER_TEXT = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
# What we trade: linear USDT perpetuals (BTCUSDT, 1000PEPEUSDT). The base is
# letters and digits but not necessarily ASCII: Binance lists "币安人生USDT".
# [^\W_a-z] = a Unicode letter or digit that is not "_" and not ASCII lower case.
_USDT_PERPETUAL = re.compile(r"[^\W_a-z]{1,20}USDT")
# Well-formed symbols of contracts we don't trade: USDC-margined (BTCUSDC,
# Bybit's BTCPERP), inverse (BTCUSD), dated futures (BTCUSDT_250328, BTC-27DEC24).
_OTHER_CONTRACT = re.compile(r"[^\W_a-z]{2,30}(?:[_-][^\W_a-z]{1,12})?")


def load_json_object(raw: str | bytes | bytearray | memoryview) -> dict[str, Any]:
    """The JSON object in one text frame; ``MalformedMessage`` for anything else."""
    if type(raw) is str:
        text = raw
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        # Decode explicitly: json.loads(bytes) would also guess UTF-16/32.
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("not_utf8") from None
    else:
        raise MalformedMessage("not_text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise MalformedMessage("too_large")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested junk ("[[[[..."); ValueError covers
        # JSONDecodeError and int strings beyond Python's digit limit.
        raise MalformedMessage("invalid_json") from None
    if type(message) is not dict:
        raise MalformedMessage("not_an_object")
    return message


def positive_decimal(value: Any, name: str) -> Decimal:
    """A venue number string > 0 and <= MAX_NUMBER."""
    if type(value) is not str or not _NUMBER_TEXT.fullmatch(value):
        raise MalformedMessage(f"bad_number:{name}")
    number = Decimal(value)
    if not 0 < number <= MAX_NUMBER:
        raise MalformedMessage(f"out_of_range:{name}")
    return number


def non_negative_decimal(value: Any, name: str) -> Decimal:
    if type(value) is not str or not _NUMBER_TEXT.fullmatch(value):
        raise MalformedMessage(f"bad_number:{name}")
    number = Decimal(value)
    if number > MAX_NUMBER:
        raise MalformedMessage(f"out_of_range:{name}")
    return number


def timestamp_ms(value: Any, name: str) -> int:
    # type() is, not isinstance: True is an int too.
    if type(value) is not int or not 0 < value < MAX_TIMESTAMP_MS:
        raise MalformedMessage(f"bad_time:{name}")
    return value


def traded_symbol(value: Any) -> str:
    if type(value) is not str:
        raise MalformedMessage("bad_symbol")
    if _USDT_PERPETUAL.fullmatch(value):
        return value
    if _OTHER_CONTRACT.fullmatch(value):
        raise UnsupportedSymbol("unsupported_symbol")
    raise MalformedMessage("bad_symbol")


def liquidated_side_from(mapping: dict[str, str], value: Any) -> str:
    # Check the type first: a list or dict can't even be looked up in the mapping.
    side = mapping.get(value) if type(value) is str else None
    if side is None:
        raise MalformedMessage("bad_side")
    return side
