"""Pure trading rules: plain functions over plain data, no I/O.

Rules import only the standard library and other rules. The shared venue
vocabulary they need lives here; the functions live in the submodules
(``trading.rules.rounding``, ``trading.rules.order_link_id``), which import
this package, so this file must not import them back.
"""

from __future__ import annotations

import enum


class Side(enum.StrEnum):
    """Bybit's side words, used for orders and for positions alike.

    For a position Bybit says ``Buy`` for a long and ``Sell`` for a short, so
    one enum serves both. A ``StrEnum`` member *is* the string Bybit expects,
    so it goes into a request body as is.
    """

    BUY = "Buy"
    SELL = "Sell"

    @property
    def opposite(self) -> Side:
        """The side that closes a position of this side."""
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def is_long(self) -> bool:
        return self is Side.BUY
