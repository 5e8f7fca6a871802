"""Celery tasks of the portfolio strategy: thin, each calls one step of ``portfolio.services``.

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

import threading

from celery import shared_task
from django.utils import timezone

from trading.errors import RetryableError

_gateway = None
_gateway_lock = threading.Lock()


def _gateway_get():
    """One prepared gateway per worker process, built on first use.

    Built lazily, after the prefork pool has forked, so no two processes share an
    HTTP session. A gateway whose ``prepare()`` failed is not kept.
    """
    global _gateway
    if _gateway is None:
        with _gateway_lock:
            if _gateway is None:
                from trading.gateway import BybitGateway

                gateway = BybitGateway.from_settings()
                gateway.prepare()
                _gateway = gateway
    # Bybit revises lot filters twice a month and lists symbols any day: reload once a day.
    _gateway.instruments.refresh_if_stale()
    return _gateway


_RETRY = {"autoretry_for": (RetryableError,), "retry_backoff": 2, "retry_backoff_max": 10, "max_retries": 2}


@shared_task(name="portfolio.scan", **_RETRY)
def portfolio_scan() -> dict:
    from portfolio.services import portfolio_scan_step

    return portfolio_scan_step(gateway=_gateway_get(), now=timezone.now()).summary()


@shared_task(name="portfolio.trail", **_RETRY)
def portfolio_trail() -> dict:
    from portfolio.services import portfolio_trail_step

    return portfolio_trail_step(gateway=_gateway_get(), now=timezone.now()).summary()
