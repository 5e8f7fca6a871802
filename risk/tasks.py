"""Celery tasks of the risk manager: thin, each calls one step (``risk.tpsl``, ``risk.daily``,
``risk.im_watch``, ``risk.snapshot``, ``risk.closed_pnl``, ``risk.reconcile``).

The beat (``CELERY_BEAT_SCHEDULE``) runs the daily control and the IM watch every 5 s,
the TP/SL upkeep every 10 s, the dashboard's account snapshot every 2 s and the closed-PnL
sync every 30 s, each with an ``expires`` of its period: a run that waited longer than
that in the queue is dropped, the next beat brings a fresh one.

The beat is the retry: an exchange error ends the run as one log line and a record in
``core.exchange_status`` (``trading.worker_gateway.exchange_step``), never a traceback,
and the next beat, seconds later, tries again.
"""

from __future__ import annotations

from celery import shared_task

from trading.worker_gateway import exchange_step


@shared_task(name="risk.tpsl_upkeep")
def tpsl_upkeep() -> dict:
    from risk.tpsl import tpsl_upkeep_step

    return exchange_step("risk.tpsl_upkeep", tpsl_upkeep_step)


@shared_task(name="risk.daily_control")
def daily_control() -> dict:
    from risk.daily import daily_control_step

    return exchange_step("risk.daily_control", daily_control_step)


@shared_task(name="risk.im_watch")
def im_watch() -> dict:
    from risk.im_watch import im_watch_step

    return exchange_step("risk.im_watch", im_watch_step)


@shared_task(name="risk.account_snapshot")
def account_snapshot() -> dict:
    from risk.snapshot import account_snapshot_publish_step

    return exchange_step("risk.account_snapshot", account_snapshot_publish_step)


@shared_task(name="risk.account_reconcile")
def account_reconcile() -> dict:
    from risk.reconcile import account_reconcile_step

    return exchange_step("risk.account_reconcile", account_reconcile_step)


@shared_task(name="risk.closed_pnl_sync")
def closed_pnl_sync() -> dict:
    from risk.closed_pnl import closed_pnl_sync_step

    return exchange_step("risk.closed_pnl_sync", closed_pnl_sync_step)
