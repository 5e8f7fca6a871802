"""A refused API key is a status in plain words: what to fix, where, then restart. A wrong key
at the real simulator (10003) shows as "API key refused" on /api/health, the dashboard and
/status, is alerted once however long it lasts, is said once by the engine's start-up, and is
printed at `make run`'s start."""

from __future__ import annotations

import asyncio
import io
import logging
import time

import pytest
from django.utils import timezone

from controlpanel.dashboard import dashboard_snapshot
from controlpanel.launcher import exchange_refusal_watch
from core import alerts
from core.alerts import alert_digests_flush
from core.exchange_status import (
    KEY_REFUSED,
    REFUSED,
    exchange_failure_record,
    exchange_ok_record,
    exchange_status_judge,
    exchange_status_read,
)
from core.models import AlertSettings
from risk.snapshot import account_snapshot_publish_step
from telegram_bridge.services import status_text
from tests.support.sim import make_sim_gateway
from trading.alerting import auth_error_text
from trading.engine_runner import EngineRunner

NOW_MS = 1_700_000_000_000
WORDS = (
    "API key refused by the simulator (retCode 10003: API key is invalid): "
    "fix SIM_API_KEY / SIM_API_SECRET in .env for sim mode, then restart."
)


@pytest.fixture
def sent():
    """Every alert the hook delivers, as (kind, text)."""
    delivered: list[tuple[str, str]] = []
    alerts.alert_sender_register("test", lambda text, *, kind: delivered.append((kind, text)))
    yield delivered
    alerts.alert_sender_unregister("test")


@pytest.fixture
def wrong_key(sim, settings):
    """The worker's gateway with a mistyped SIM_API_KEY, against the real simulator."""
    settings.EXCHANGE_MODE = "sim"
    return make_sim_gateway(sim, prepare=False, api_key="mistyped-key", max_attempts=1)


@pytest.mark.parametrize(
    ("code", "message", "mode", "words"),
    [
        (10003, "API key is invalid.", "sim", WORDS),
        (
            10005,
            "Permission denied, please check your API key permissions.",
            "live",
            "API key refused by Bybit (retCode 10005: Permission denied, please check your API key "
            "permissions): fix BYBIT_API_KEY / BYBIT_API_SECRET in .env for live mode, then restart.",
        ),
        (
            None,
            "BYBIT_API_KEY and BYBIT_API_SECRET are required in demo mode",
            "demo",
            "API key missing (BYBIT_API_KEY and BYBIT_API_SECRET are required in demo mode): "
            "set BYBIT_API_KEY / BYBIT_API_SECRET in .env for demo mode, then restart.",
        ),
    ],
)
def test_a_refused_key_is_said_in_plain_words(code, message, mode, words):
    assert auth_error_text(code, message, mode=mode) == words


def test_the_judge_shows_a_refused_key_as_its_words_not_as_refusing_our_calls():
    raw = {
        "last_error": WORDS,
        "last_error_kind": KEY_REFUSED,
        "last_error_ms": str(NOW_MS),
        "failing_since_ms": str(NOW_MS - 4_000),
    }
    status = exchange_status_judge(raw, now_ms=NOW_MS)
    assert status.state == REFUSED and status.failing and status.key_refused
    assert (
        status.problem
        == f"{WORDS} (refused since {time.strftime('%H:%M:%S', time.gmtime(NOW_MS / 1000 - 4))} UTC)"
    )
    assert status.as_dict()["key_refused"] is True
    other = exchange_status_judge({**raw, "last_error_kind": REFUSED}, now_ms=NOW_MS)
    assert not other.key_refused and "refusing our calls" in other.problem


@pytest.mark.integration
@pytest.mark.django_db
def test_a_wrong_key_at_the_simulator_is_api_key_refused_on_health_dashboard_and_status(
    wrong_key, redis_db, client, sent
):
    for _ in range(30):  # a minute of the worker's snapshot, every 2 s
        result = account_snapshot_publish_step(gateway=wrong_key, now=timezone.now())
        assert not result.published and "AuthError (code 10003)" in result.error

    status = exchange_status_read()
    assert status.state == REFUSED and status.key_refused and status.problem.startswith(WORDS)
    health = client.get("/api/health")
    assert health.status_code == 503
    assert health.json()["exchange"]["problem"].startswith("API key refused by the simulator (retCode 10003")
    assert dashboard_snapshot(now=timezone.now())["exchange_problem"] == status.problem
    assert f"⚠️ {status.problem}" in status_text().splitlines()

    # Alerted once: not a message per pass, not a digest per rate-limit window.
    assert sent == [("auth_error", f"⚠️ {WORDS}")]
    window_s = AlertSettings.load().rate_limit_window_s
    assert alert_digests_flush(now=timezone.now().timestamp() + window_s + 1) == 0
    assert len(sent) == 1


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_engine_refused_at_start_records_the_status_and_says_it_once(wrong_key, redis_db, caplog, sent):
    runner = EngineRunner(
        gateway=wrong_key, endpoints=None, startup_retry_s=0.02, key_refused_retry_s=0.05, mode="sim"
    )

    async def start_then_stop() -> bool:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        return await runner.start(stop)

    with caplog.at_level(logging.INFO, logger="trading.engine_runner"):
        assert asyncio.run(start_then_stop()) is False

    said = [r for r in caplog.records if r.name == "trading.engine_runner" and r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in said] == [f"engine_api_key_refused {WORDS}"]
    assert said[0].levelno == logging.ERROR
    status = exchange_status_read()
    assert status.key_refused and status.problem.startswith(WORDS)
    assert runner.phase == "waiting_for_venue" and sent == [("auth_error", f"⚠️ {WORDS}")]


@pytest.mark.integration
def test_make_runs_start_prints_a_refused_key_and_nothing_when_the_exchange_answers(redis_db):
    since = int(time.time() * 1000)
    exchange_failure_record(kind=KEY_REFUSED, error=WORDS, now_ms=since - 60_000)  # the last run's: not said
    out = io.StringIO()
    assert exchange_refusal_watch(since_ms=since, timeout_s=0.3, interval_s=0.05, out=out) == ""

    exchange_failure_record(kind=KEY_REFUSED, error=WORDS, alert_after_s=0)
    printed = exchange_refusal_watch(since_ms=since, timeout_s=5, interval_s=0.05, out=out)
    assert WORDS in printed and out.getvalue() == printed + "\n"

    exchange_ok_record()
    assert exchange_refusal_watch(since_ms=since, timeout_s=5, interval_s=0.05, out=io.StringIO()) == ""


@pytest.mark.parametrize(
    ("code", "refused"),
    [(10003, True), (10004, True), (10005, True), (10007, True), (10010, True), (33004, True), (401, True)]
    + [(10001, False), (10006, False), (110007, False), (None, False)],
)
def test_the_key_refusals_are_the_gateways_auth_errors(code, refused):
    """One list (trading.errors): the engine's journal alerts name the same codes the gateway raises on."""
    from trading.errors import is_key_refusal

    assert is_key_refusal(code) is refused
