"""The panic lock held in Redis (Telegram /close's fallback with the database down): the beat
that writes it into the database, and the readers that honour it meanwhile. The whole
fallback, through the bot, is in test_panic_telegram.py."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from controlpanel.celery import app
from core import keys
from core.models import TradingState
from core.panic_lock import trading_switches
from core.status import status_snapshot
from panic.tasks import lock_reconcile
from tests.support.database import database_down
from trading.models import Decision
from trading.selectors import trading_flags

pytestmark = pytest.mark.django_db(transaction=True)


def _redis_lock(redis_db, *, reason="/close (fallback)") -> None:
    lock = {"since_ms": 1_790_000_000_000, "reason": reason, "by": "telegram:4242"}
    redis_db.set(keys.PANIC_FALLBACK_LOCK, json.dumps(lock))


def test_the_beat_reconciles_every_5_seconds():
    entry = django_settings.CELERY_BEAT_SCHEDULE["panic-lock-reconcile"]
    assert entry["task"] == "panic.lock_reconcile" and entry["schedule"] == 5.0
    app.loader.import_default_modules()
    assert "panic.lock_reconcile" in app.tasks


def test_a_redis_lock_stops_trading_until_the_database_has_it(redis_db):
    TradingState.load()  # all switches off in the database
    _redis_lock(redis_db)

    assert trading_flags().panic_locked
    assert not trading_switches().may_trade(timezone.now())
    status = status_snapshot()
    assert not status.may_trade
    assert status.switches.panic_reason == "/close (fallback) (lock held in Redis: the database was down)"
    assert status.switches.panic_since.timestamp() == 1_790_000_000

    assert lock_reconcile() == {"reconciled": True}
    state = TradingState.load()
    assert state.panic_locked and state.panic_reason == "/close (fallback)"
    assert state.panic_since.timestamp() == 1_790_000_000
    assert redis_db.get(keys.PANIC_FALLBACK_LOCK) is None
    assert json.loads(redis_db.get(keys.TRADING_STATE))["panic_locked"] is True  # the engine is told
    assert Decision.objects.get(action="lock").details["by"] == "telegram:4242"


def test_while_the_database_is_still_down_the_beat_keeps_the_redis_lock(redis_db):
    _redis_lock(redis_db)
    with database_down(), ThreadPoolExecutor(1) as worker:  # a worker thread: its own connection
        assert worker.submit(lock_reconcile).result() == {"reconciled": False, "error": "OperationalError"}
    assert redis_db.get(keys.PANIC_FALLBACK_LOCK) is not None
    assert not TradingState.objects.filter(panic_locked=True).exists()
    assert lock_reconcile() == {"reconciled": True}


def test_a_lock_already_in_the_database_keeps_its_own_time_and_reason(redis_db):
    TradingState.objects.update_or_create(
        pk=1, defaults={"panic_locked": True, "panic_reason": "POST /panic", "panic_since": timezone.now()}
    )
    _redis_lock(redis_db)
    assert status_snapshot().switches.panic_reason == "POST /panic"
    assert lock_reconcile() == {"reconciled": True}
    assert TradingState.load().panic_reason == "POST /panic"
    assert Decision.objects.get(action="lock").details["newly_locked"] is False
