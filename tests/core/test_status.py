"""core.status: one status read, and every reader (REST, GET /panic, /status, the dashboard)
shows the same thing from it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import core.status as status_module
from controlpanel.dashboard import dashboard_snapshot
from core import keys
from core.heartbeat import heartbeat_write
from core.models import TradingState
from core.redis_client import redis_client
from core.status import status_snapshot
from telegram_bridge.services import status_text

pytestmark = pytest.mark.django_db

STATS = {"ready": True, "coins": 3, "entries_sent": 7, "skips": {"offset_not_met": 4}, "positions": 1}


def _halted(now: datetime) -> TradingState:
    state = TradingState.load()
    state.halted, state.halted_by, state.halted_since = True, "api:owner", now
    state.save()
    return state


def test_a_read_before_anyone_touched_the_switches_creates_no_row(redis_db):
    status = status_snapshot()
    assert status.may_trade is True
    assert status.switches.pk is None and not TradingState.objects.exists()


def test_it_reads_switches_engine_account_panic_run_and_health_in_one_go(redis_db, settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    now = datetime.now(tz=UTC)
    _halted(now)
    redis_db.set(keys.ENGINE_STATS, json.dumps(STATS))
    redis_db.set(keys.ACCOUNT_SNAPSHOT, json.dumps({"at_ms": 1, "equity": "1000"}))
    redis_db.set(keys.PANIC_RUN, "panic-20260101T000000")
    heartbeat_write(process="engine")

    status = status_snapshot(now=now)

    assert status.switches.halted and status.may_trade is False
    assert status.engine == STATS
    assert status.account == {"at_ms": 1, "equity": "1000"}
    assert status.panic_running == "panic-20260101T000000"
    health = {p.name: p.alive for p in status.health}
    assert health["engine"] is True and health["worker"] is False
    assert status.healthy is False and status.redis_error == ""


def test_the_switches_are_judged_at_the_time_asked(redis_db):
    now = datetime.now(tz=UTC)
    state = TradingState.load()
    state.disabled_until = now + timedelta(hours=1)
    state.save()
    assert status_snapshot(now=now).may_trade is False
    assert status_snapshot(now=now + timedelta(hours=2)).may_trade is True


def test_redis_down_keeps_the_switches_and_says_why(redis_db, monkeypatch):
    _halted(datetime.now(tz=UTC))
    monkeypatch.setattr(status_module, "redis_client", lambda: redis_client("redis://127.0.0.1:1/0"))

    status = status_snapshot()

    assert status.switches.halted and status.may_trade is False
    assert status.health is None and status.engine is None and status.healthy is None
    assert status.redis_error == "redis unavailable (ConnectionError)"


def test_rest_panic_telegram_and_the_dashboard_agree(client, api_token, redis_db):
    now = datetime.now(tz=UTC)
    _halted(now)
    redis_db.set(keys.ENGINE_STATS, json.dumps(STATS))
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {api_token}"}

    rest = client.get("/api/state", **bearer).json()
    panic = client.get("/panic", **bearer).json()
    telegram = status_text()
    dashboard = dashboard_snapshot(now=now)

    assert rest["halted"] is True and rest["may_trade"] is False and rest["engine"] == STATS
    assert panic["may_trade"] is False and panic["running_run_key"] is None
    assert "Trading: NOT allowed" in telegram and "  - halted by api:owner since" in telegram
    assert "Engine: ready, 3 coins, 7 entries sent, 4 skips, 1 positions" in telegram
    assert dashboard["lock"]["halted"] is True and dashboard["lock"]["may_trade"] is False
    assert dashboard["engine"]["entries_sent"] == 7 and dashboard["engine"]["skips_total"] == 4
