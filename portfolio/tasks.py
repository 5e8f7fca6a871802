"""Celery tasks of the portfolio strategy: thin, each calls one step (``portfolio.scan``,
``portfolio.trail``).

The beat (``CELERY_BEAT_SCHEDULE``) sends both every 60 s with an ``expires`` of 60 s
(a run that waited longer in the queue is dropped; the next beat brings a fresh one).
The scan step decides itself whether a scan is due (``scan_interval_minutes``), so an
interval edited in the admin applies without restarting the beat.

Only the gateway's ``RetryableError`` (rate limit, timeout, 5xx) is retried, and
briefly; anything else is a bug or a refusal that a retry would repeat. Orders are
never resent by a retry: every PM order is written down under its deterministic
``orderLinkId`` before it is sent.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from trading.errors import RetryableError
from trading.worker_gateway import worker_gateway

_RETRY = {"autoretry_for": (RetryableError,), "retry_backoff": 2, "retry_backoff_max": 10, "max_retries": 2}


@shared_task(name="portfolio.scan", **_RETRY)
def portfolio_scan() -> dict:
    from portfolio.scan import portfolio_scan_step

    return portfolio_scan_step(gateway=worker_gateway(), now=timezone.now()).summary()


@shared_task(name="portfolio.trail", **_RETRY)
def portfolio_trail() -> dict:
    from portfolio.trail import portfolio_trail_step

    return portfolio_trail_step(gateway=worker_gateway(), now=timezone.now()).summary()
