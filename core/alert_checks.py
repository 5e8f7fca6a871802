"""The beat's checks that turn silence into alerts (`core.tasks.alert_checks`, every 10 s).

- **heartbeat_missing**: a required process (`core.heartbeat.health_report`) is not alive;
  `heartbeat_recovered` when it beats again.
- **feed_silent**: the engine's liquidation feed heard nothing for
  `AlertSettings.feed_silent_seconds`; `feed_recovered` when it speaks again. The engine
  writes its feeds' clocks to `keys.ENGINE_FEEDS` every 5 s, off its hot path; when that
  record is stale the engine itself is down, which the heartbeat check reports instead.

Each alerts once when the trouble starts and once when it ends: the set of what is
currently reported lives in Redis, and SADD / SREM (1 only for the first caller) decide
who alerts, so two workers never both do. For one heartbeat timeout after the checks
start (a fresh `make run`, or the worker back after a while) nothing is reported missing:
every process is still starting and last run's beats are old.

The beat sends these checks to both Celery queues (``alert-checks`` and ``alert-checks-risk``),
so the default worker reports a dead risk worker and the risk worker a dead default worker
(the Telegram bridge runs them too); the SADD/SREM above keep it one alert per outage. With
every worker down these checks don't run; the dashboard and `/api/health` still show it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from core import keys
from core.alerts import alert_send
from core.heartbeat import health_report
from core.redis_client import redis_client

CHECKS_SINCE_TTL_S = 120  # the checks run every 10 s; a gap this long restarts the grace
ENGINE_FEEDS_STALE_S = 20  # the engine writes its feed clocks every 5 s
LIQUIDATION = "liquidation"


@dataclass
class ChecksResult:
    missing: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    feed_silent: bool = False
    feed_recovered: bool = False

    def summary(self) -> dict:
        return {
            "missing": self.missing,
            "recovered": self.recovered,
            "feed_silent": self.feed_silent,
            "feed_recovered": self.feed_recovered,
        }


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%H:%M:%S UTC")


def _checks_since(client, now: float) -> float:
    client.set(keys.ALERTS_CHECKS_SINCE, repr(now), nx=True, ex=CHECKS_SINCE_TTL_S)
    since = float(client.get(keys.ALERTS_CHECKS_SINCE) or now)
    client.expire(keys.ALERTS_CHECKS_SINCE, CHECKS_SINCE_TTL_S)
    return since


def alert_checks_step(*, now: float | None = None, client=None) -> ChecksResult:
    """Run both checks once at `now` (unix seconds)."""
    now = time.time() if now is None else now
    client = client or redis_client()
    result = ChecksResult()
    heartbeats_check(now=now, client=client, result=result)
    feed_check(now=now, client=client, result=result)
    return result


def heartbeats_check(*, now: float, client, result: ChecksResult) -> None:
    in_grace = now - _checks_since(client, now) < settings.HEARTBEAT_TIMEOUT_S
    for process in health_report(now=now, client=client):
        if not process.required:
            continue
        if process.alive:
            if client.srem(keys.ALERTS_PROCESSES_DOWN, process.name):
                result.recovered.append(process.name)
                alert_send(
                    f"{process.name} is back: heartbeat {process.age_s:.0f} s ago.",
                    kind="heartbeat_recovered",
                )
        elif not in_grace and client.sadd(keys.ALERTS_PROCESSES_DOWN, process.name):
            result.missing.append(process.name)
            if process.last_heartbeat is None:
                seen = "it has never sent one"
            else:
                seen = f"last seen {process.age_s:.0f} s ago, at {process.last_heartbeat:%H:%M:%S} UTC"
            alert_send(f"{process.name} is missing its heartbeat: {seen}.", kind="heartbeat_missing")


def feed_check(*, now: float, client, result: ChecksResult) -> None:
    raw = client.get(keys.ENGINE_FEEDS)
    try:
        record = json.loads(raw) if raw else None
        at_s = record["at_ms"] / 1000
        feed = record["feeds"][LIQUIDATION]
        last_s = feed["last_frame_ms"] / 1000
    except (TypeError, ValueError, KeyError):
        return  # the engine never wrote its clocks (not running): the heartbeat check says so
    if now - at_s > ENGINE_FEEDS_STALE_S:
        return  # the engine stopped writing them: it is down, the heartbeat check says so
    from core.models import AlertSettings

    threshold_s = AlertSettings.load().feed_silent_seconds
    silent_s = at_s - last_s
    if silent_s > threshold_s:
        if client.sadd(keys.ALERTS_FEED_SILENT, LIQUIDATION):
            result.feed_silent = True
            state = "connected" if feed.get("connected") else "not connected, reconnecting"
            alert_send(
                f"The liquidation feed has been silent for {silent_s:.0f} s "
                f"(last message at {_clock(last_s)}; {state}).",
                kind="feed_silent",
            )
    elif client.srem(keys.ALERTS_FEED_SILENT, LIQUIDATION):
        result.feed_recovered = True
        alert_send(f"The liquidation feed is back: last message at {_clock(last_s)}.", kind="feed_recovered")
