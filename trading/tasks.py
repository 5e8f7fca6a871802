"""Celery tasks for the trading side: thin, they call services."""

from celery import shared_task

from trading.errors import RetryableError
from trading.services import instruments_store, journal_prune


@shared_task(
    name="trading.refresh_instruments", autoretry_for=(RetryableError,), retry_backoff=30, max_retries=5
)
def refresh_instruments() -> int:
    """Daily (and at start): the instrument table that coin validation reads."""
    from trading.worker_gateway import worker_gateway

    return instruments_store(worker_gateway().fetch_instruments())


@shared_task(name="trading.prune_journal")
def prune_journal() -> int:
    """Daily: skipped decisions older than 30 days go; orders and failures stay."""
    return journal_prune(keep_skipped_days=30)
