"""Telegram /close's fallback, for when the panic service cannot run; and the lock it leaves.

`panic_fallback_close` does what the seed's /close did, on its own small path (the
panic service's machinery is what just failed):
1. Lock trading: `TradingState.panic_locked` in the database; when the database is down
   too, the Redis stand-in `keys.PANIC_FALLBACK_LOCK` (core.panic_lock), announced to the
   engine on the events channel like the normal lock. Nothing re-enters after the closes.
2. Cancel every order, then close every position directly through the gateway:
   reduce-only, the exact size, the position's own `positionIdx`. On Bybit's 10001
   "position idx not match position mode" (an account whose mode was switched by hand)
   the close is retried once without `positionIdx`. Up to `ROUNDS` rounds, each from a
   fresh read, until the exchange reads back flat.
3. Journal the outcome. When that write fails, the result says so, and the closes that
   went out are still reported: the reply must never hide an order that was sent.

`panic_lock_reconcile` writes a Redis-held lock (and a journal entry it carries) into the
database once it is back: the beat runs it every few seconds, the panic reset first.
It never raises; the caller (a Telegram handler) replies with what happened.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.db import DatabaseError, transaction
from django.utils import timezone

from core import keys
from core.models import TradingState
from core.panic_lock import fallback_lock_parse, fallback_lock_since
from core.redis_client import redis_client
from core.status import json_or_none
from trading.bybit import BybitGateway, Position
from trading.errors import BadRequest, GatewayError, OrderOutcomeUnknown
from trading.models import Decision
from trading.rules.order_link_id import order_link_id
from trading.services import decision_record, events_publish, panic_lock_set, trading_state_payload

logger = logging.getLogger(__name__)

ROUNDS = 3
PAUSE_S = 0.5  # after round n: n x this
POSITION_IDX_MISMATCH = "position idx not match position mode"  # Bybit's 10001 text for it

# Delete the Redis lock only if it is still the one reconciled (a newer fallback may have set it again).
_DELETE_IF_SAME = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass
class FallbackResult:
    run_key: str
    lock: str = "none"  # where the panic lock was set: "database", "redis" or "none"
    lock_error: str = ""
    cancelled_orders: int = 0
    closed: list[str] = field(default_factory=list)  # "BTCUSDT Sell 0.010", one per close sent
    closed_without_position_idx: list[str] = field(default_factory=list)  # symbols retried so
    errors: list[str] = field(default_factory=list)
    rounds: int = 0
    remaining_positions: list[str] = field(default_factory=list)
    remaining_orders: int = 0
    verified: bool = False  # the last round read positions and orders without an error
    journaled: bool = False
    journal_error: str = ""

    @property
    def flat(self) -> bool:
        return self.verified and not self.remaining_positions and not self.remaining_orders

    def details(self) -> dict:
        return {
            "run_key": self.run_key,
            "lock": self.lock,
            "rounds": self.rounds,
            "cancelled_orders": self.cancelled_orders,
            "closes_sent": self.closed,
            "closed_without_position_idx": self.closed_without_position_idx,
            "remaining_positions": self.remaining_positions,
            "remaining_orders": self.remaining_orders,
            "errors": self.errors[:10],
            "verified": self.verified,
            "flat": self.flat,
        }


# -- the lock --------------------------------------------------------------------------


def _lock_in_database(*, reason: str, now: datetime) -> None:
    with transaction.atomic():
        panic_lock_set(reason=reason, since=now, now=now)


def _lock_in_redis(*, by: str, reason: str, now: datetime) -> None:
    """Set the Redis lock (keeping an earlier one) and tell the engine, on top of the switches
    it was last sent (the database cannot be read for the others)."""
    client = redis_client()
    lock = {"since_ms": int(now.timestamp() * 1000), "reason": reason, "by": by}
    client.set(keys.PANIC_FALLBACK_LOCK, json.dumps(lock), nx=True)
    lock = fallback_lock_parse(client.get(keys.PANIC_FALLBACK_LOCK)) or lock
    last = json_or_none(client.get(keys.TRADING_STATE)) or trading_state_payload(TradingState())
    events_publish(
        "trading_state",
        {**last, "panic_locked": True, "panic_since_ms": lock.get("since_ms"), "panic_reason": reason},
    )


def _lock(result: FallbackResult, *, by: str, reason: str, now: datetime) -> None:
    try:
        _lock_in_database(reason=reason, now=now)
        result.lock = "database"
        return
    except redis.RedisError as error:  # the row committed; only the engine's notice failed
        logger.error("panic_fallback_lock_not_published error=%s", type(error).__name__)
        result.lock = "database"
        return
    except DatabaseError as error:
        result.lock_error = f"database: {type(error).__name__}"
        logger.error("panic_fallback_lock_database_failed error=%s (locking in Redis)", type(error).__name__)
    try:
        _lock_in_redis(by=by, reason=reason, now=now)
        result.lock = "redis"
    except redis.RedisError as error:
        result.lock_error += f"; redis: {type(error).__name__}"
        logger.error("panic_fallback_lock_failed error=%s (trading is NOT locked)", type(error).__name__)


# -- the closes ----------------------------------------------------------------------


def _close(
    gateway: BybitGateway, position: Position, *, run_key: str, round_number: int, result: FallbackResult
) -> None:
    side = position.side.opposite.value
    link_id = order_link_id(
        strategy=Decision.Strategy.MANUAL,
        symbol=position.symbol,
        decision_key=f"{run_key}:{round_number}",
        leg="close",
    )
    try:
        try:
            gateway.close_position(position=position, order_link_id=link_id)
        except BadRequest as error:
            if POSITION_IDX_MISMATCH not in (error.message or ""):
                raise
            logger.warning("panic_fallback_close_retry symbol=%s without_position_idx=1", position.symbol)
            link_id = order_link_id(
                strategy=Decision.Strategy.MANUAL,
                symbol=position.symbol,
                decision_key=f"{run_key}:{round_number}:noidx",
                leg="close",
            )
            gateway.close_position(position=position, order_link_id=link_id, with_position_idx=False)
            result.closed_without_position_idx.append(position.symbol)
        result.closed.append(f"{position.symbol} {side} {position.size.normalize():f}")
    except OrderOutcomeUnknown:
        result.errors.append(f"{position.symbol}: outcome unknown")  # the next round re-reads
    except GatewayError as error:
        result.errors.append(f"{position.symbol}: {error.code} {error.message}")


def _round(gateway: BybitGateway, result: FallbackResult, *, run_key: str, round_number: int) -> None:
    try:
        result.cancelled_orders += len(gateway.cancel_all_orders())
    except GatewayError as error:
        result.errors.append(f"cancel: {error.code} {error.message}")
    try:
        positions = gateway.positions()
    except GatewayError as error:
        result.errors.append(f"positions: {error.code} {error.message}")
        positions = []
    for position in positions:
        _close(gateway, position, run_key=run_key, round_number=round_number, result=result)
    try:
        remaining = gateway.positions()
        orders = [order for order in gateway.open_orders() if order.is_open]
    except GatewayError as error:
        result.errors.append(f"verify: {error.code} {error.message}")
        result.verified = False
        return
    result.verified = True
    result.remaining_positions = sorted({p.symbol for p in remaining})
    result.remaining_orders = len(orders)


def panic_fallback_close(
    *, by: str, reason: str, run_key: str, gateway: BybitGateway | None = None
) -> FallbackResult:
    """Lock trading (database, else Redis), close every position directly, journal. Blocking."""
    now = timezone.now()
    result = FallbackResult(run_key=run_key)
    _lock(result, by=by, reason=reason, now=now)
    try:
        gateway = gateway or BybitGateway.from_settings()
    except GatewayError as error:  # e.g. live mode without keys
        result.errors.append(f"gateway: {error.code} {error.message}")
        gateway = None
    for round_number in range(1, ROUNDS + 1 if gateway else 1):
        result.rounds = round_number
        _round(gateway, result, run_key=run_key, round_number=round_number)
        if result.flat:
            break
        if round_number < ROUNDS:
            time.sleep(PAUSE_S * round_number)
    logger.warning(
        "panic_fallback_done by=%s run_key=%s lock=%s flat=%s closed=%s errors=%d",
        by,
        run_key,
        result.lock,
        result.flat,
        ",".join(result.closed),
        len(result.errors),
    )
    _journal(result, by=by, reason=reason)
    return result


def _journal(result: FallbackResult, *, by: str, reason: str) -> None:
    details = {"by": by, "reason": reason, **result.details()}
    try:
        decision_record(
            strategy=Decision.Strategy.MANUAL,
            action="flatten",
            outcome=Decision.Outcome.TAKEN if result.flat else Decision.Outcome.FAILED,
            reason_code="fallback_flat" if result.flat else "fallback_not_flat",
            details=details,
        )
        result.journaled = True
        return
    except DatabaseError as error:
        result.journal_error = type(error).__name__
        logger.error("panic_fallback_not_journaled run_key=%s error=%s", result.run_key, type(error).__name__)
    if result.lock != "redis":
        return
    # The reconcile journals it with the lock, once the database is back.
    try:
        client = redis_client()
        lock = fallback_lock_parse(client.get(keys.PANIC_FALLBACK_LOCK))
        if lock is not None:
            client.set(keys.PANIC_FALLBACK_LOCK, json.dumps({**lock, "journal": details}))
    except redis.RedisError as error:
        logger.error("panic_fallback_journal_not_kept error=%s", type(error).__name__)


# -- reconciling the Redis lock into the database ------------------------------------------


def panic_lock_reconcile() -> bool:
    """Write the Redis-held panic lock into the database, journal it (and the fallback's own
    entry when that could not be written), then drop it from Redis. True when there was one.

    Raises DatabaseError while the database is still down (the beat tries again)."""
    client = redis_client()
    raw = client.get(keys.PANIC_FALLBACK_LOCK)
    lock = fallback_lock_parse(raw)
    if lock is None:
        return False
    now = timezone.now()
    since = fallback_lock_since(lock) or now
    reason = str(lock.get("reason") or "panic (lock held in Redis)")[:200]
    with transaction.atomic():
        _, newly_locked = panic_lock_set(reason=reason, since=since, now=now)
        decision_record(
            strategy=Decision.Strategy.PANIC,
            action="lock",
            outcome=Decision.Outcome.TAKEN,
            reason_code="reconciled_from_redis",
            details={"by": lock.get("by", ""), "reason": reason, "newly_locked": newly_locked},
        )
        if isinstance(lock.get("journal"), dict):
            journal = lock["journal"]
            decision_record(
                strategy=Decision.Strategy.MANUAL,
                action="flatten",
                outcome=Decision.Outcome.TAKEN if journal.get("flat") else Decision.Outcome.FAILED,
                reason_code="fallback_journaled_late",
                details=journal,
            )
    client.eval(_DELETE_IF_SAME, 1, keys.PANIC_FALLBACK_LOCK, raw)
    logger.warning("panic_lock_reconciled by=%s newly_locked=%s", lock.get("by", ""), newly_locked)
    return True
