"""Deterministic ``orderLinkId`` values.

Every order carries an ``orderLinkId`` derived from the decision that made it,
so a retry after a timeout reuses the id and Bybit refuses a second copy
(110072) instead of opening twice.

Shape: ``<strategy>-<leg>-<symbol stem>-<16 hex digits>``, for example
``wl-entry-BTC-3f1c9a0b2d4e6f70`` (33 characters). The prefix is for humans
reading the exchange UI; the hash is over *all* inputs (the full symbol and the
whole decision key), so truncating the prefix never makes two decisions share
an id. 16 hex digits = 64 bits: the chance of any collision among a million ids
is about 3e-8.

Bybit allows at most 36 characters of ``A-Z a-z 0-9 - _``.
"""

from __future__ import annotations

import hashlib
import json
import re

MAX_LENGTH = 36
HASH_LENGTH = 16
_SEPARATOR = "-"
_TOKEN = re.compile(r"^[A-Za-z0-9]{1,8}$")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9]")
ALLOWED = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
# Quote coins dropped from the readable stem: "BTCUSDT" reads as "BTC".
_QUOTE_SUFFIXES = ("USDT", "USDC", "PERP")


def _symbol_stem(symbol: str) -> str:
    stem = _NOT_ALLOWED.sub("", symbol)
    for suffix in _QUOTE_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def order_link_id(*, strategy: str, symbol: str, decision_key: str, leg: str = "entry") -> str:
    """The ``orderLinkId`` for one leg of one decision; same inputs, same id.

    ``strategy`` and ``leg`` are short readable tokens (1-8 letters or digits,
    e.g. ``"wl"``, ``"pm"``, ``"panic"``; ``"entry"``, ``"tp"``, ``"close"``).
    ``decision_key`` identifies the decision uniquely and stably, e.g. the
    liquidation event id it reacted to, or a panic run id plus an attempt
    number. Reusing a key deliberately reuses the id.
    """
    if not _TOKEN.match(strategy):
        raise ValueError(f"strategy must be 1-8 letters or digits, got {strategy!r}")
    if not _TOKEN.match(leg):
        raise ValueError(f"leg must be 1-8 letters or digits, got {leg!r}")
    if not symbol or not decision_key:
        raise ValueError("symbol and decision_key are required")
    # JSON of a list is an unambiguous encoding: ("a-b", "c") and ("a", "b-c") differ.
    canonical = json.dumps([strategy, symbol, decision_key, leg], separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    prefix = f"{strategy}{_SEPARATOR}{leg}{_SEPARATOR}"
    room_for_stem = MAX_LENGTH - len(prefix) - len(_SEPARATOR) - HASH_LENGTH
    stem = _symbol_stem(symbol)[:room_for_stem]
    if stem:
        return f"{prefix}{stem}{_SEPARATOR}{digest}"
    return f"{prefix}{digest}"


def strategy_of(link_id: str) -> str | None:
    """The strategy token an id made by ``order_link_id`` starts with; ``None`` for foreign ids.

    Orders placed by hand in the Bybit UI have empty or free-form ids; only
    ids of our exact shape are attributed.
    """
    parts = link_id.split(_SEPARATOR)
    if len(parts) < 3 or len(parts[-1]) != HASH_LENGTH or not _TOKEN.match(parts[0]):
        return None
    try:
        int(parts[-1], 16)
    except ValueError:
        return None
    return parts[0]


def is_valid_order_link_id(link_id: str) -> bool:
    """Whether Bybit accepts ``link_id`` as an ``orderLinkId``."""
    return bool(ALLOWED.match(link_id))
