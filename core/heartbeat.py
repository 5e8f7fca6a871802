"""Process heartbeats in Redis, and the health report built from them.

Every long-running process writes `{ts, pid, host}` into one Redis hash every
HEARTBEAT_INTERVAL_S. The hash keeps the last beat after a process dies, so the
health report can say when it was last seen; a process is alive while its last
beat is younger than HEARTBEAT_TIMEOUT_S.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from core import keys
from core.redis_client import redis_client

logger = logging.getLogger(__name__)

KNOWN_PROCESSES = ("web", "engine", "riskwatch", "worker", "risk_worker", "beat", "telegram", "sim")


def required_processes(*, exchange_mode: str, telegram_enabled: bool) -> tuple[str, ...]:
    """The processes `make run` starts for this configuration, in display order."""
    names = ["web", "engine", "riskwatch", "worker", "risk_worker", "beat"]
    if telegram_enabled:
        names.append("telegram")
    if exchange_mode == "sim":
        names.append("sim")
    return tuple(names)


@dataclass(frozen=True)
class ProcessHealth:
    name: str
    required: bool
    alive: bool
    last_heartbeat: datetime | None
    age_s: float | None
    pid: int | None
    host: str | None


def process_health(
    *, name: str, required: bool, beat: dict | None, now: float, timeout_s: float
) -> ProcessHealth:
    """Pure: judge one process from its last beat (None if it never beat)."""
    if beat is None:
        return ProcessHealth(name, required, False, None, None, None, None)
    age = max(0.0, now - float(beat["ts"]))
    return ProcessHealth(
        name=name,
        required=required,
        alive=age < timeout_s,
        last_heartbeat=datetime.fromtimestamp(float(beat["ts"]), tz=UTC),
        age_s=round(age, 3),
        pid=beat.get("pid"),
        host=beat.get("host"),
    )


def heartbeat_write(*, process: str, now: float | None = None, client=None) -> None:
    beat = {"ts": time.time() if now is None else now, "pid": os.getpid(), "host": socket.gethostname()}
    (client or redis_client()).hset(keys.HEARTBEATS, process, json.dumps(beat))


def health_report(*, now: float | None = None, client=None) -> list[ProcessHealth]:
    """Every required process, then any other process that has ever beaten."""
    raw = (client or redis_client()).hgetall(keys.HEARTBEATS)
    return health_from_beats(raw, now=time.time() if now is None else now)


def health_from_beats(raw: dict[str, str], *, now: float) -> list[ProcessHealth]:
    """`health_report` from the heartbeat hash already read (`status_snapshot` reads it in
    the same round trip as everything else)."""
    beats = {}
    for name, value in raw.items():
        try:
            beats[name] = json.loads(value)
        except (TypeError, ValueError):
            continue  # a corrupt entry counts as no beat, it must not break the report
    required = required_processes(
        exchange_mode=settings.EXCHANGE_MODE, telegram_enabled=bool(settings.TELEGRAM_BOT_TOKEN)
    )
    names = list(required) + sorted(set(beats) - set(required))
    return [
        process_health(
            name=name,
            required=name in required,
            beat=beats.get(name),
            now=now,
            timeout_s=settings.HEARTBEAT_TIMEOUT_S,
        )
        for name in names
    ]


class HeartbeatThread(threading.Thread):
    """Beats for a process whose main loop we don't own (daphne, celery, the simulator)."""

    def __init__(self, process: str, interval_s: float | None = None):
        super().__init__(name=f"heartbeat-{process}", daemon=True)
        self.process = process
        self.interval_s = interval_s or settings.HEARTBEAT_INTERVAL_S
        self._stopped = threading.Event()

    def run(self) -> None:
        failing = False
        while not self._stopped.is_set():
            try:
                heartbeat_write(process=self.process)
                if failing:
                    logger.info("heartbeat_restored process=%s", self.process)
                failing = False
            except Exception as error:  # Redis down: keep trying, say so once per outage
                if not failing:
                    logger.warning("heartbeat_failed process=%s error=%s", self.process, type(error).__name__)
                failing = True
            self._stopped.wait(self.interval_s)

    def stop(self) -> None:
        self._stopped.set()


def heartbeat_start(process: str) -> HeartbeatThread:
    thread = HeartbeatThread(process)
    thread.start()
    return thread


async def heartbeat_forever(process: str, stop) -> None:
    """Beat from an asyncio process until `stop` (an asyncio.Event) is set; never blocks the loop."""
    import asyncio

    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    failing = False
    try:
        while not stop.is_set():
            beat = {"ts": time.time(), "pid": os.getpid(), "host": socket.gethostname()}
            try:
                await client.hset(keys.HEARTBEATS, process, json.dumps(beat))
                failing = False
            except Exception as error:
                if not failing:
                    logger.warning("heartbeat_failed process=%s error=%s", process, type(error).__name__)
                failing = True
            try:
                await asyncio.wait_for(stop.wait(), timeout=settings.HEARTBEAT_INTERVAL_S)
            except TimeoutError:
                pass
    finally:
        await client.aclose()
