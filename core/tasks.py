"""Celery tasks of the kernel: thin, each calls one step (``core.alerts``, ``core.alert_checks``).
Not retried: the next beat, 10 s later, is the retry."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="core.alert_digests_flush")
def alert_digests_flush() -> int:
    """Send the alert digests that are due (rate-limited kinds at their window's end, the trade digest)."""
    from core.alerts import alert_digests_flush as flush

    return flush()


@shared_task(name="core.alert_checks")
def alert_checks() -> dict:
    """A required process missing its heartbeat, the liquidation feed silent: once per outage, once back."""
    from core.alert_checks import alert_checks_step

    return alert_checks_step().summary()
