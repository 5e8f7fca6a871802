"""What the risk manager's steps share: the strategy's name, journal text helpers, and the
interval between repeated failure entries in the journal.

Every step journals as strategy ``risk`` (``Decision``) and makes no exchange call inside
a transaction: a slow venue must not hold a database lock (SQLite has one writer), and a
rolled-back transaction cannot take back an order anyway.
"""

from __future__ import annotations

from decimal import Decimal

from core import keys
from core.redis_client import redis_client
from trading.bybit import Position
from trading.models import Decision

STRATEGY = Decision.Strategy.RISK  # also the orderLinkId prefix of every order placed here
TAKEN = Decision.Outcome.TAKEN
SKIPPED = Decision.Outcome.SKIPPED
FAILED = Decision.Outcome.FAILED

# A failure that repeats on every pass (a venue refusing the same TP/SL every 10 s)
# is journaled at most this often; every occurrence is still logged.
FAILURE_JOURNAL_INTERVAL_S = 300


def decimal_text(value: Decimal | None) -> str | None:
    """Decimals go into the journal's JSON as strings (exact, and JSON has no Decimal)."""
    return None if value is None else str(value)


def pct_text(value: Decimal) -> str:
    """A percentage for people: "10", "2.5", "-5.0123" (no exponent, no trailing zeros)."""
    if not value.is_finite():
        return "infinite"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def side_word(position: Position) -> str:
    return "long" if position.is_long else "short"


def failure_journal_due(what: str) -> bool:
    """True at most once per FAILURE_JOURNAL_INTERVAL_S for one kind of failure (a Redis key with a TTL)."""
    key = keys.RISK_FAILURE_JOURNALED.format(what=what)
    return bool(redis_client().set(key, "1", nx=True, ex=FAILURE_JOURNAL_INTERVAL_S))


def failure_clear(what: str) -> bool:
    """Forget a failure; True when one was remembered (it had been journaled: now it is over)."""
    return bool(redis_client().delete(keys.RISK_FAILURE_JOURNALED.format(what=what)))
