"""Celery tasks for the trading side: thin, they call services."""

from celery import shared_task

from trading.errors import RetryableError
from trading.services import instruments_store


@shared_task(
    name="trading.refresh_instruments", autoretry_for=(RetryableError,), retry_backoff=30, max_retries=5
)
def refresh_instruments() -> int:
    """Daily (and at start): the instrument table that coin validation reads."""
    from trading.gateway import BybitGateway

    return instruments_store(BybitGateway.from_settings().fetch_instruments())
