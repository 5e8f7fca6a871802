"""Whether the exchange answers: the pure judge, the records in a real Redis, and the whole path
with a real Celery worker whose simulator is stopped: health, the dashboard and /status say it
within 15 s, one alert goes out, and the log carries no traceback."""

from __future__ import annotations

import logging
import time

import pytest

from core import alerts, exchange_status
from core.exchange_status import (
    REFUSED,
    UNREACHABLE,
    exchange_failure_record,
    exchange_ok_record,
    exchange_status_judge,
    exchange_status_read,
)
from tests.support.waiting import wait_until
from trading import worker_gateway as worker_gateway_module
from trading.errors import AuthError, ExchangeUnreachable, InsufficientBalance, RetryableError
from trading.worker_gateway import exchange_failure_kind

NOW_MS = 1_700_000_000_000


class RecordList(logging.Handler):
    """Every log record of the worker's run (caplog's handler is gone once Celery sets logging up)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_the_judge_names_each_state():
    assert exchange_status_judge({}, now_ms=NOW_MS).state == "unknown"
    ok = {"last_ok_ms": str(NOW_MS - 1000)}
    assert exchange_status_judge(ok, now_ms=NOW_MS).state == "ok"
    assert exchange_status_judge(ok, now_ms=NOW_MS + 31_000).state == "unknown"  # nobody probes
    down = {
        **ok,
        "last_error": "ExchangeUnreachable: timeout",
        "last_error_kind": UNREACHABLE,
        "last_error_ms": str(NOW_MS),
        "failing_since_ms": str(NOW_MS - 500),
    }
    status = exchange_status_judge(down, now_ms=NOW_MS)
    assert status.state == UNREACHABLE and status.failing
    assert status.problem.startswith("Exchange unreachable since ") and "timeout" in status.problem
    refused = exchange_status_judge({**down, "last_error_kind": REFUSED}, now_ms=NOW_MS)
    assert refused.state == REFUSED and "refusing our calls" in refused.problem


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ExchangeUnreachable(None, "timeout"), UNREACHABLE),
        (RetryableError(502, "HTTP 502"), UNREACHABLE),
        (AuthError(10003, "API key is invalid."), REFUSED),
        (RetryableError(10006, "Too many visits"), None),  # it answers: a rate limit is not an outage
        (InsufficientBalance(110007, "ab not enough"), None),
    ],
)
def test_which_errors_say_the_exchange_is_down(error, kind):
    assert exchange_failure_kind(error) == kind


def test_an_outage_is_alerted_once_after_it_lasted_and_its_end_once(redis_db):
    assert not exchange_failure_record(kind=UNREACHABLE, error="x", now_ms=NOW_MS)
    assert not exchange_failure_record(kind=UNREACHABLE, error="x", now_ms=NOW_MS + 9_000)  # a blip yet
    assert exchange_failure_record(kind=UNREACHABLE, error="x", now_ms=NOW_MS + 10_000)
    assert not exchange_failure_record(kind=UNREACHABLE, error="x", now_ms=NOW_MS + 12_000)
    status = exchange_status_read(now_ms=NOW_MS + 12_000)
    assert status.failing and status.failing_since_ms == NOW_MS
    assert exchange_ok_record(now_ms=NOW_MS + 13_000)
    assert not exchange_ok_record(now_ms=NOW_MS + 15_000)
    status = exchange_status_read(now_ms=NOW_MS + 15_000)
    assert status.state == "ok" and status.last_ok_ms == NOW_MS + 15_000 and status.last_error == "x"


def test_a_blip_between_good_answers_is_never_alerted(redis_db):
    for second in range(0, 60, 5):
        now = NOW_MS + second * 1000
        assert not exchange_failure_record(kind=UNREACHABLE, error="x", now_ms=now)
        assert not exchange_ok_record(now_ms=now + 1000)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_stopped_exchange_is_a_status_everywhere_within_15_s_and_no_traceback(
    redis_db, settings, monkeypatch, client
):
    from celery.contrib.testing.worker import start_worker
    from django.utils import timezone

    from controlpanel.celery import app
    from controlpanel.dashboard import dashboard_snapshot
    from risk import tasks
    from simulator.testing import running_simulator
    from telegram_bridge.services import status_text

    monkeypatch.setattr(exchange_status, "ALERT_AFTER_S", 2.0)
    records, level = RecordList(), logging.root.level
    sent: list[tuple[str, str]] = []
    alerts.alert_sender_register("test", lambda text, *, kind: sent.append((kind, text)))
    monkeypatch.setattr(worker_gateway_module, "_gateway", None)  # the worker builds its own
    settings.EXCHANGE_MODE = "sim"
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            # After the worker took the root logger over (and, in a run, set it to ERROR).
            logging.root.setLevel(logging.INFO)
            logging.root.addHandler(records)
            with running_simulator() as sim:
                settings.SIM_BASE_URL = sim.base_url
                settings.SIM_API_KEY, settings.SIM_API_SECRET = sim.api_key, sim.api_secret
                tasks.account_snapshot.delay()
                wait_until(lambda: exchange_status_read().state == "ok", timeout_s=15)
            stopped = time.monotonic()
            while not exchange_status_read().failing or not sent:  # the beat's periods, faster
                assert time.monotonic() - stopped < 15, "the outage was not seen within 15 s"
                for task in (tasks.account_snapshot, tasks.daily_control, tasks.tpsl_upkeep):
                    task.delay()
                time.sleep(1.0)
    finally:
        logging.root.removeHandler(records)
        logging.root.setLevel(level)
        alerts.alert_sender_unregister("test")

    status = exchange_status_read()
    assert status.state == UNREACHABLE and "ExchangeUnreachable" in status.problem
    health = client.get("/api/health")
    assert health.status_code == 503 and health.json()["exchange"]["state"] == UNREACHABLE
    assert health.json()["exchange"]["problem"] == status.problem
    assert dashboard_snapshot(now=timezone.now())["exchange_problem"] == status.problem
    assert f"⚠️ {status.problem}" in status_text().splitlines()
    assert [kind for kind, _ in sent] == ["exchange_unreachable"]

    messages = [r.getMessage() for r in records.records]
    failures = [r for r in records.records if r.getMessage().startswith("task_exchange_failed")]
    assert {r.levelno for r in failures} == {logging.WARNING}
    assert any(m.startswith("task_exchange_failed task=risk.tpsl_upkeep ") for m in messages)
    assert not [r for r in records.records if r.exc_info], "a traceback was logged"
    assert [r.getMessage() for r in records.records if r.levelno >= logging.ERROR] == []
