"""Celery tasks of the portfolio strategy: thin, each calls one step (``portfolio.scan``,
``portfolio.trail``).

The beat (``CELERY_BEAT_SCHEDULE``) sends both every 60 s with an ``expires`` of 60 s
(a run that waited longer in the queue is dropped; the next beat brings a fresh one).
The scan step decides itself whether a scan is due (``scan_interval_minutes``), so an
interval edited in the admin applies without restarting the beat.

The beat is the retry: an exchange error ends the run as one log line and a record in
``core.exchange_status`` (``trading.worker_gateway.exchange_step``). Orders are never
resent under a new id: every PM order is written down under its deterministic
``orderLinkId`` before it is sent.
"""

from __future__ import annotations

from celery import shared_task

from trading.worker_gateway import exchange_step


@shared_task(name="portfolio.scan")
def portfolio_scan() -> dict:
    from portfolio.scan import portfolio_scan_step

    return exchange_step("portfolio.scan", portfolio_scan_step)


@shared_task(name="portfolio.trail")
def portfolio_trail() -> dict:
    from portfolio.trail import portfolio_trail_step

    return exchange_step("portfolio.trail", portfolio_trail_step)
