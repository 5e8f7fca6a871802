"""One risk task through a real Celery worker (in a thread) and the real Redis broker."""

from __future__ import annotations

import time

import pytest

from controlpanel.celery import app
from risk import tasks
from risk.models import DailyPnL
from trading import worker_gateway as worker_gateway_module

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_daily_control_task_runs_its_step_in_a_worker(sim, redis_db, settings, monkeypatch):
    from celery.contrib.testing.worker import start_worker

    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY, settings.SIM_API_SECRET = sim.api_key, sim.api_secret
    monkeypatch.setattr(
        worker_gateway_module, "_gateway", None
    )  # the worker builds its own, from these settings

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        tasks.daily_control.delay()
        deadline = time.monotonic() + 15
        while not DailyPnL.objects.exists():
            assert time.monotonic() < deadline, "the worker never ran risk.daily_control"
            time.sleep(0.05)

    day = DailyPnL.objects.get()
    assert str(day.baseline_equity) == "10000.0000" and day.outcome == "open"
    assert (
        worker_gateway_module._gateway is not None and worker_gateway_module._gateway.base_url == sim.base_url
    )  # cached for the next run
