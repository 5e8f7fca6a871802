"""Heartbeats in a real Redis, their expiry, and GET /api/health."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from core import keys
from core.heartbeat import (
    HeartbeatThread,
    health_report,
    heartbeat_forever,
    heartbeat_write,
    process_health,
    required_processes,
)

ALL_SIM = ("web", "engine", "riskwatch", "worker", "risk_worker", "beat", "sim")


def beat_everything(now, names=ALL_SIM):
    for name in names:
        heartbeat_write(process=name, now=now)


@pytest.mark.parametrize(
    ("mode", "telegram", "expected"),
    [
        ("sim", False, ("web", "engine", "riskwatch", "worker", "risk_worker", "beat", "sim")),
        ("sim", True, ("web", "engine", "riskwatch", "worker", "risk_worker", "beat", "telegram", "sim")),
        ("live", False, ("web", "engine", "riskwatch", "worker", "risk_worker", "beat")),
        ("demo", True, ("web", "engine", "riskwatch", "worker", "risk_worker", "beat", "telegram")),
    ],
)
def test_required_processes_follow_the_configuration(mode, telegram, expected):
    assert required_processes(exchange_mode=mode, telegram_enabled=telegram) == expected


@pytest.mark.parametrize(("age", "alive"), [(0, True), (19.9, True), (20, False), (300, False)])
def test_a_process_is_alive_while_its_last_beat_is_younger_than_the_timeout(age, alive):
    health = process_health(
        name="engine",
        required=True,
        beat={"ts": 1000.0, "pid": 7, "host": "h"},
        now=1000.0 + age,
        timeout_s=20,
    )
    assert health.alive is alive and health.age_s == age and health.pid == 7


def test_a_process_that_never_beat_is_down():
    health = process_health(name="engine", required=True, beat=None, now=5.0, timeout_s=20)
    assert (health.alive, health.last_heartbeat, health.age_s) == (False, None, None)


def test_heartbeats_expire_in_the_report(redis_db):
    start = time.time()
    beat_everything(start)
    assert all(p.alive for p in health_report(now=start + 1))
    heartbeat_write(process="engine", now=start + 15)
    report = {p.name: p for p in health_report(now=start + 25)}
    assert report["engine"].alive and not report["web"].alive
    assert report["web"].last_heartbeat.timestamp() == pytest.approx(start)


def test_a_corrupt_heartbeat_entry_counts_as_no_beat(redis_db):
    redis_db.hset(keys.HEARTBEATS, "engine", "{not json")
    report = {p.name: p for p in health_report()}
    assert report["engine"].alive is False and report["engine"].last_heartbeat is None


def test_the_thread_beats_repeatedly_and_stops(redis_db):
    thread = HeartbeatThread("worker", interval_s=0.05)
    thread.start()
    time.sleep(0.2)
    first = json.loads(redis_db.hget(keys.HEARTBEATS, "worker"))["ts"]
    time.sleep(0.15)
    second = json.loads(redis_db.hget(keys.HEARTBEATS, "worker"))["ts"]
    thread.stop()
    thread.join(timeout=1)
    assert second > first and not thread.is_alive()


def test_the_asyncio_heartbeat_beats_until_stopped(redis_db, settings):
    settings.HEARTBEAT_INTERVAL_S = 0.05

    async def scenario():
        stop = asyncio.Event()
        task = asyncio.create_task(heartbeat_forever("engine", stop))
        await asyncio.sleep(0.12)
        stop.set()
        await asyncio.wait_for(task, 1)

    asyncio.run(scenario())
    assert json.loads(redis_db.hget(keys.HEARTBEATS, "engine"))["ts"] == pytest.approx(time.time(), abs=2)


@pytest.mark.django_db
def test_health_is_200_when_every_required_process_is_alive(client, redis_db):
    beat_everything(time.time())
    heartbeat_write(process="portfolio-scanner", now=time.time() - 600)
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["exchange_mode"] == "sim"
    names = [p["name"] for p in body["processes"]]
    assert names == [*ALL_SIM, "portfolio-scanner"]
    extra = body["processes"][-1]
    assert extra["required"] is False and extra["alive"] is False


@pytest.mark.django_db
def test_health_is_503_when_a_required_process_is_down(client, redis_db):
    now = time.time()
    beat_everything(now, names=("web", "worker", "beat", "sim"))
    heartbeat_write(process="engine", now=now - 60)
    response = client.get("/api/health")
    assert response.status_code == 503
    engine = next(p for p in response.json()["processes"] if p["name"] == "engine")
    assert engine["alive"] is False and engine["age_s"] >= 60


@pytest.mark.django_db
def test_health_requires_telegram_only_when_a_token_is_set(client, redis_db, settings):
    beat_everything(time.time())
    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    assert client.get("/api/health").status_code == 503
    settings.TELEGRAM_BOT_TOKEN = ""
    assert client.get("/api/health").status_code == 200


@pytest.mark.django_db
def test_health_says_503_not_500_when_redis_is_unreachable(client, monkeypatch):
    import core.heartbeat as heartbeat
    from core.redis_client import redis_client

    # A real client pointed at a port where nothing listens: the failure is on the wire.
    monkeypatch.setattr(heartbeat, "redis_client", lambda: redis_client("redis://127.0.0.1:1/0"))
    response = client.get("/api/health")
    assert response.status_code == 503 and response.json()["status"] == "down"
