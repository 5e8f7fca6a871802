"""Celery tasks of the risk manager: thin, each calls one step (``risk.tpsl``, ``risk.daily``,
``risk.im_watch``, ``risk.snapshot``, ``risk.closed_pnl``).

The beat (``CELERY_BEAT_SCHEDULE``) runs the daily control and the IM watch every 5 s,
the TP/SL upkeep every 10 s, the dashboard's account snapshot every 2 s and the closed-PnL
sync every 30 s, each with an ``expires`` of its period: a run that waited longer than
that in the queue is dropped, the next beat brings a fresh one.

Only the gateway's ``RetryableError`` (rate limit, timeout, 5xx) is retried, and
briefly; anything else is a bug or a refusal that a retry would repeat.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from trading.errors import RetryableError
from trading.worker_gateway import worker_gateway

logger = logging.getLogger(__name__)

_RETRY = {"autoretry_for": (RetryableError,), "retry_backoff": 1, "retry_backoff_max": 5, "max_retries": 2}


@shared_task(name="risk.tpsl_upkeep", **_RETRY)
def tpsl_upkeep() -> dict:
    from risk.tpsl import tpsl_upkeep_step

    return tpsl_upkeep_step(gateway=worker_gateway(), now=timezone.now()).summary()


@shared_task(name="risk.daily_control", **_RETRY)
def daily_control() -> dict:
    from risk.daily import daily_control_step

    return daily_control_step(gateway=worker_gateway(), now=timezone.now()).summary()


@shared_task(name="risk.im_watch", **_RETRY)
def im_watch() -> dict:
    from risk.im_watch import im_watch_step

    return im_watch_step(gateway=worker_gateway(), now=timezone.now()).summary()


@shared_task(name="risk.account_snapshot")
def account_snapshot() -> dict:
    """Not retried: the next beat, 2 s later, is the retry."""
    from risk.snapshot import account_snapshot_publish_step

    return account_snapshot_publish_step(gateway=worker_gateway(), now=timezone.now()).summary()


@shared_task(name="risk.closed_pnl_sync")
def closed_pnl_sync() -> dict:
    """Not retried: an exchange error is logged once and the next beat, 30 s later, resumes."""
    from risk.closed_pnl import closed_pnl_sync_step

    return closed_pnl_sync_step(gateway=worker_gateway(), now=timezone.now()).summary()
