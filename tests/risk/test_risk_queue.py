"""The risk queue: protection runs on its own Celery worker, so a blocked default worker
delays none of it. Two real Celery workers (in threads, as the other task tests start one),
each on its own queue of the real Redis broker, and the simulator."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from celery import shared_task
from django.conf import settings as django_settings

from controlpanel.celery import app, worker_processes
from core import keys
from core.alert_checks import alert_checks_step
from core.heartbeat import heartbeat_write
from portfolio import tasks as portfolio_tasks
from risk import tasks
from risk.models import DailyPnL
from tests.support.sim import market_order, sim_positions
from trading import worker_gateway as worker_gateway_module
from trading.models import Coin
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RISK_TASKS = (
    "risk.daily_control",
    "risk.im_watch",
    "risk.tpsl_upkeep",
    "risk.account_reconcile",
    "panic.lock_reconcile",
)

# The default worker's long task holds it until the test lets go (both workers run in this process).
_blocking = threading.Event()
_released = threading.Event()


@shared_task(name="tests.default_queue_block")
def default_queue_block() -> None:
    _blocking.set()
    _released.wait(60)


def test_the_protection_tasks_go_to_the_risk_queue_and_the_rest_stay_on_the_default_one():
    app.loader.import_default_modules()
    router = app.amqp.router
    for name in RISK_TASKS:
        assert router.route({}, name)["queue"].name == "risk", name
    for name in ("portfolio.scan", "portfolio.trail", "risk.account_snapshot", "risk.closed_pnl_sync"):
        assert router.route({}, name)["queue"].name == "celery", name
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["alert-checks-risk"]["options"]["queue"] == "risk"  # each worker checks the other


def test_a_worker_beats_under_the_name_of_the_queue_it_serves():
    assert worker_processes({"celery": object()}) == ["worker"]
    assert worker_processes({"risk": object()}) == ["risk_worker"]
    assert worker_processes({"celery": object(), "risk": object()}) == ["worker", "risk_worker"]


def test_a_dead_risk_worker_is_reported_while_the_default_worker_runs(redis_db, settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    now = time.time()
    redis_db.set(keys.ALERTS_CHECKS_SINCE, repr(now - 100))  # past the start-up grace
    for process in ("web", "engine", "riskwatch", "worker", "beat", "sim"):
        heartbeat_write(process=process, now=now)
    heartbeat_write(process="risk_worker", now=now - 60)

    assert alert_checks_step(now=now).missing == ["risk_worker"]


@pytest.fixture
def two_workers(sim, settings, monkeypatch):
    """The default worker (queue ``celery``) and the risk worker (queue ``risk``), as the Procfile
    starts them; the gateway they build points at the simulator."""
    from celery.contrib.testing.worker import start_worker

    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY, settings.SIM_API_SECRET = sim.api_key, sim.api_secret
    monkeypatch.setattr(worker_gateway_module, "_gateway", None)
    _blocking.clear()
    _released.clear()
    queues = app.amqp.queues
    # Two workers in one process, where they are two processes in production. Each polls its
    # own broker connection (use_eventloop=False): kombu's event loop is one per process, and
    # two workers sharing it read each other's messages. Each worker's consumer takes the
    # queues selected when it starts, so they start one after the other.
    options = {"pool": "solo", "perform_ping_check": False, "shutdown_timeout": 10, "use_eventloop": False}
    try:
        with start_worker(app, queues=["celery"], **options):
            with start_worker(app, queues=["risk"], **options):
                yield
                _released.set()
    finally:
        _released.set()
        queues.select(list(queues))  # later tests' workers consume every queue again


def wait_for(condition, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_risk_worker_stops_the_day_and_keeps_tpsl_while_the_default_worker_is_blocked(
    sim, gateway, redis_db, two_workers
):
    Coin.objects.create(
        symbol="BTCUSDT",
        long_offset_pct=Decimal("1"),
        short_offset_pct=Decimal("1"),
        min_liquidation_usdt=Decimal("1000"),
        order_size_usdt=Decimal("50"),
        leverage=10,
        take_profit_pct=Decimal("1.5"),
        stop_loss_pct=Decimal("8"),
    )
    default_queue_block.delay()
    wait_for(_blocking.is_set, "the default worker never took the long task")
    portfolio_tasks.portfolio_scan.delay()  # a backlog behind it

    tasks.daily_control.delay()
    wait_for(DailyPnL.objects.exists, "the risk worker never set the day's baseline")
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    tasks.tpsl_upkeep.delay()
    wait_for(lambda: sim_positions(sim)["BTCUSDT"]["stopLoss"] not in ("", "0"), "no TP/SL was set")

    sim.set_price("BTCUSDT", "95000.00")  # 0.5 x -2009.70: about -10 % of 10 000
    tasks.daily_control.delay()
    wait_for(
        DailyPnL.objects.filter(flat_verified_at__isnull=False).exists, "the risk worker never ended flat"
    )

    day = DailyPnL.objects.get()
    assert day.outcome == "stop_hit" and sim.state()["positions"] == []
    assert not _released.is_set()  # the default worker was still in its long task throughout
