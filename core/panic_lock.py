"""The panic lock's stand-in in Redis, for when the database cannot take the lock.

Telegram /close's fallback (`panic.fallback`) closes positions when the panic service
cannot run. If the database is down too, it sets `keys.PANIC_FALLBACK_LOCK` instead of
`TradingState.panic_locked`, so nothing re-enters after the closes. Until
`panic.fallback.panic_lock_reconcile` (a beat task, and the panic reset) has written it
into the database, every reader of the switches merges it in here: the status snapshot,
the engine's flags and the events it is sent, and PM's checks.

A Redis that cannot be read merges nothing: the database row is then the whole truth
(the lock was only ever put in Redis because the database was down).
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime

import redis

from core import keys
from core.models import TradingState
from core.redis_client import redis_client

logger = logging.getLogger(__name__)

NOTE = "lock held in Redis: the database was down"


def fallback_lock_parse(raw: str | None) -> dict | None:
    if not raw:
        return None
    try:
        lock = json.loads(raw)
    except (TypeError, ValueError):
        lock = {}  # a corrupt value still locks: when unsure, do not trade
    return lock if isinstance(lock, dict) else {}


def fallback_lock_read() -> dict | None:
    """The Redis lock, or None (none set, or Redis cannot be read)."""
    try:
        return fallback_lock_parse(redis_client().get(keys.PANIC_FALLBACK_LOCK))
    except redis.RedisError as error:
        logger.warning("panic_fallback_lock_unreadable error=%s", type(error).__name__)
        return None


def fallback_lock_since(lock: dict) -> datetime | None:
    since_ms = lock.get("since_ms")
    return datetime.fromtimestamp(since_ms / 1000, tz=UTC) if isinstance(since_ms, int) else None


def switches_merge(state: TradingState, lock: dict | None) -> TradingState:
    """`state` with the Redis lock on it (an unsaved copy), or `state` itself when there is
    none or the row is locked already."""
    if lock is None or state.panic_locked:
        return state
    merged = copy.copy(state)
    merged.panic_locked = True
    merged.panic_since = fallback_lock_since(lock)
    merged.panic_reason = f"{lock.get('reason') or 'panic'} ({NOTE})"[:200]
    return merged


def trading_switches() -> TradingState:
    """The switches as every strategy must obey them: the database row (all off while it does
    not exist) with the Redis lock merged in."""
    return switches_merge(TradingState.current(), fallback_lock_read())
