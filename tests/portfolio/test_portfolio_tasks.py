"""The portfolio tasks through a real Celery worker (in a thread) and the real Redis broker."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings

from controlpanel.celery import app
from portfolio import tasks
from portfolio.models import PortfolioPosition
from tests.support.portfolio import allow
from tests.support.sim import set_prices
from trading import worker_gateway as worker_gateway_module

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_beat_sends_both_steps_every_minute():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert (
        schedule["portfolio-scan"]["task"] == "portfolio.scan"
        and schedule["portfolio-scan"]["schedule"] == 60.0
    )
    assert (
        schedule["portfolio-trail"]["task"] == "portfolio.trail"
        and schedule["portfolio-trail"]["schedule"] == 60.0
    )
    app.loader.import_default_modules()
    assert {"portfolio.scan", "portfolio.trail"} <= set(app.tasks)


def test_the_scan_and_trail_tasks_run_their_steps_in_a_worker(sim, pm, redis_db, settings, monkeypatch):
    from celery.contrib.testing.worker import start_worker

    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY, settings.SIM_API_SECRET = sim.api_key, sim.api_secret
    monkeypatch.setattr(
        worker_gateway_module, "_gateway", None
    )  # the worker builds its own, from these settings
    allow("XRPUSDT")
    set_prices(sim, XRPUSDT="2.7500")

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        tasks.portfolio_scan.delay()
        deadline = time.monotonic() + 15
        while not PortfolioPosition.objects.filter(status="open").exists():
            assert time.monotonic() < deadline, "the worker never ran portfolio.scan"
            time.sleep(0.05)
        set_prices(sim, XRPUSDT="2.5000")  # below 2.7503 x 0.95: the trailing stop
        tasks.portfolio_trail.delay()
        while not PortfolioPosition.objects.filter(status="closed").exists():
            assert time.monotonic() < deadline, "the worker never ran portfolio.trail"
            time.sleep(0.05)

    assert sim.state()["positions"] == []
    assert (
        worker_gateway_module._gateway is not None and worker_gateway_module._gateway.base_url == sim.base_url
    )  # cached for the next run
