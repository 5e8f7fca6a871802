"""The alert tasks on the beat, run by a real Celery worker (in a thread) over the real Redis broker."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings

from controlpanel.celery import app
from core import alerts, keys, tasks
from core.heartbeat import heartbeat_write

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_beat_sends_both_every_10_seconds():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["alert-digests-flush"]["task"] == "core.alert_digests_flush"
    assert schedule["alert-checks"]["task"] == "core.alert_checks"
    assert schedule["alert-digests-flush"]["schedule"] == schedule["alert-checks"]["schedule"] == 10.0
    app.loader.import_default_modules()
    assert {"core.alert_digests_flush", "core.alert_checks"} <= set(app.tasks)


def test_a_worker_sends_the_due_digest_and_reports_a_missing_process(redis_db, monkeypatch):
    from celery.contrib.testing.worker import start_worker

    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(alerts, "_senders", {"list": lambda text, *, kind: sent.append((kind, text))})
    long_ago = time.time() - 400  # the storm's window (300 s) ended 100 s ago
    for i in range(5):
        alerts.alert_send("Bybit refused the API keys (retCode 10003).", kind="auth_error", now=long_ago + i)
    redis_db.set(keys.ALERTS_CHECKS_SINCE, repr(time.time() - 100))  # past the start-up grace
    for process in ("web", "riskwatch", "worker", "risk_worker", "beat", "sim"):
        heartbeat_write(process=process)
    heartbeat_write(process="engine", now=time.time() - 90)

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        tasks.alert_digests_flush.delay()
        tasks.alert_checks.delay()
        deadline = time.monotonic() + 15
        while len(sent) < 3:
            assert time.monotonic() < deadline, f"the worker never ran both tasks: {sent!r}"
            time.sleep(0.05)

    assert sent[0] == ("auth_error", "Bybit refused the API keys (retCode 10003).")
    assert (
        "auth_error",
        "auth_error: 4 more alerts folded by the rate limit.\n4× Bybit refused the API keys (retCode 10003).",
    ) in sent
    [missing] = [text for kind, text in sent if kind == "heartbeat_missing"]
    assert missing.startswith(
        "engine is missing its heartbeat: last seen 9"
    )  # 90 s, or 91 by the time it ran
