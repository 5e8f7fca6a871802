"""Celery task of the panic app: writing a panic lock held in Redis into the database.

Telegram /close's fallback locks trading in Redis when the database is down
(`panic.fallback`). The beat (``CELERY_BEAT_SCHEDULE``) runs the reconcile every 5 s;
while the database is still down a run ends as one log line, and the next beat tries again.
"""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.db import DatabaseError

logger = logging.getLogger(__name__)


@shared_task(name="panic.lock_reconcile")
def lock_reconcile() -> dict:
    from panic.fallback import panic_lock_reconcile

    try:
        return {"reconciled": panic_lock_reconcile()}
    except (DatabaseError, redis.RedisError) as error:
        logger.warning("panic_lock_reconcile_failed error=%s (next beat retries)", type(error).__name__)
        return {"reconciled": False, "error": type(error).__name__}
