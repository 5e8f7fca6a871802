"""One symbol, one strategy: a symbol that is an enabled liquidation coin (``Coin``) is not also
traded by another strategy (the portfolio's allowlist), and the other way round.

Why: in one-way mode Bybit keeps one leverage per symbol and one position. The portfolio sets
1x, the liquidation engine its coin's leverage: on a shared symbol each would enter with the
other's leverage and add to the other's position.

The models' ``clean()`` refuse the overlap, so the admin, the API and the importers do too,
with a message naming the symbol. ``Coin`` lives here and cannot import the apps above it: a
strategy above registers its own claim (``symbol_claim_register``) in its ``AppConfig.ready()``.
An import that edits both sides at once checks them after all its writes
(``claims_deferred``), so moving a symbol from one side to the other in one import works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# A claim answers "do you trade this symbol?" with a message naming it, or None.
Claim = Callable[[str], str | None]

_claims: dict[str, Claim] = {}
_deferred: ContextVar[bool] = ContextVar("symbol_claims_deferred", default=False)


def symbol_claim_register(owner: str, claim: Claim) -> None:
    _claims[owner] = claim


def symbol_claims(symbol: str) -> list[str]:
    """The other strategies' messages for an enabled coin on ``symbol`` (none while deferred)."""
    if _deferred.get():
        return []
    return [message for claim in _claims.values() if (message := claim(symbol))]


def coin_claim(symbol: str) -> str | None:
    """The liquidation engine's claim: ``symbol`` is an enabled ``Coin`` (none while deferred)."""
    from trading.models import Coin  # the model module imports this one

    if _deferred.get() or not Coin.objects.filter(symbol=symbol, enabled=True).exists():
        return None
    return (
        f"{symbol} is an enabled coin of the liquidation engine (Coins). A symbol is traded by one "
        "strategy only: disable the coin first, or keep this entry disabled."
    )


@contextmanager
def claims_deferred() -> Iterator[None]:
    """Skip the claim checks in ``clean()`` for a batch of writes that checks them itself after."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)
