"""The one status read: the trading switches, the engine's figures, the account as the
worker last read it, process health, and whether the exchange answers.

REST (`GET /api/state`), `GET /panic`, Telegram `/status` and the dashboard all read
`status_snapshot()`, so they can never disagree. It costs one database read (the
switches; a read never creates their row) and one Redis round trip. When Redis is down
the Redis parts are None and `redis_error` says why: a status read never fails, because
it matters most when things break.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from core import keys
from core.exchange_status import ExchangeStatus, exchange_status_judge
from core.heartbeat import ProcessHealth, health_from_beats
from core.models import TradingState
from core.panic_lock import fallback_lock_parse, switches_merge
from core.redis_client import redis_client

logger = logging.getLogger(__name__)

# The worker publishes the account every 2 s: older than this, readers say it is stale.
ACCOUNT_STALE_S = 10.0
# The engine publishes its figures every 0.5 s, and at each try while the venue does not
# answer (a try may take a gateway timeout, 10 s): older than this, they are not current.
ENGINE_STATS_STALE_S = 30.0


@dataclass(frozen=True)
class StatusSnapshot:
    at: datetime
    exchange_mode: str
    switches: TradingState  # unsaved, all off, while nobody has touched them
    may_trade: bool
    panic_running: str | None = None  # the run key of a panic flatten in progress
    engine: dict | None = None  # the engine's figures (ready, coins, entries, skips, IM %)
    account: dict | None = None  # the worker's account snapshot (equity, IM %, positions, orders)
    account_error: dict | None = None  # the worker's last failure to read the account
    health: list[ProcessHealth] | None = None  # required processes first
    exchange: ExchangeStatus | None = None  # whether the exchange answers the worker's calls
    redis_error: str = ""

    @property
    def account_age_s(self) -> float | None:
        """Seconds since the worker read the account (None: no snapshot)."""
        return snapshot_age_s(self.account, now=self.at)

    @property
    def account_stale(self) -> bool:
        age = self.account_age_s
        return age is not None and age > ACCOUNT_STALE_S

    @property
    def account_problem(self) -> str:
        """Why the account figures are missing or old ("" when there is nothing to say)."""
        if self.redis_error:
            return self.redis_error
        error = (self.account_error or {}).get("error", "")
        if error or self.account:
            return error
        return "no snapshot yet (is the worker running?)"

    @property
    def engine_problem(self) -> str:
        """Why the engine's figures are not the running engine's own ("" when they are)."""
        return engine_stats_problem(self.engine, exchange_mode=self.exchange_mode, now=self.at)

    @property
    def engine_current(self) -> bool:
        return bool(self.engine) and not self.engine_problem

    @property
    def healthy(self) -> bool | None:
        """Every required process alive (None: unknown, Redis is down)."""
        if self.health is None:
            return None
        return all(process.alive for process in self.health if process.required)


def snapshot_age_s(snapshot: dict | None, *, now: datetime) -> float | None:
    """Seconds from a published snapshot's ``at_ms`` to ``now`` (None: no snapshot)."""
    if not snapshot or "at_ms" not in snapshot:
        return None
    return max(0.0, now.timestamp() - snapshot["at_ms"] / 1000)


def engine_stats_problem(stats: dict | None, *, exchange_mode: str, now: datetime) -> str:
    """Why published engine figures are not current: none yet, another mode's run (the
    figures carry the mode they were measured in), a stopped engine, or no update lately."""
    if not stats:
        return "no figures from the engine yet"
    mode = stats.get("mode")
    if mode is None:
        return "figures of an earlier engine version (no run id)"
    if mode != exchange_mode:
        return f"figures of a {mode} run; this system runs in {exchange_mode} mode"
    if stats.get("phase") == "stopped":
        return "the engine stopped"
    age_s = snapshot_age_s(stats, now=now)
    if age_s is None or age_s > ENGINE_STATS_STALE_S:
        return "no update for {} (is the engine running?)".format(
            "a while" if age_s is None else f"{age_s:.0f} s"
        )
    return ""


def json_or_none(raw: str | None):
    """A JSON value from Redis; None when missing or corrupt."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None  # a corrupt value reads as missing; it must not break a read


def status_snapshot(*, now: datetime | None = None) -> StatusSnapshot:
    """The status at `now` (the switches' clock); health is judged at the wall clock."""
    now = now or timezone.now()
    switches = TradingState.current()
    base = {
        "at": now,
        "exchange_mode": settings.EXCHANGE_MODE,
        "switches": switches,
        "may_trade": switches.may_trade(now),
    }
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            pipe.get(keys.PANIC_RUN)
            pipe.get(keys.ENGINE_STATS)
            pipe.get(keys.ACCOUNT_SNAPSHOT)
            pipe.get(keys.ACCOUNT_SNAPSHOT_ERROR)
            pipe.hgetall(keys.HEARTBEATS)
            pipe.hgetall(keys.EXCHANGE_STATUS)
            pipe.get(keys.PANIC_FALLBACK_LOCK)
            panic_run, stats, account, account_error, beats, exchange, fallback_lock = pipe.execute()
    except Exception as error:  # Redis down or unreachable: say so, keep the database part
        logger.warning("status_redis_unavailable error=%s", type(error).__name__)
        return StatusSnapshot(**base, redis_error=f"redis unavailable ({type(error).__name__})")
    # A panic lock the database could not take yet (core.panic_lock) counts as a lock.
    switches = switches_merge(switches, fallback_lock_parse(fallback_lock))
    base.update(switches=switches, may_trade=switches.may_trade(now))
    return StatusSnapshot(
        **base,
        panic_running=panic_run,
        engine=json_or_none(stats),
        account=json_or_none(account),
        account_error=json_or_none(account_error),
        health=health_from_beats(beats, now=time.time()),
        exchange=exchange_status_judge(exchange, now_ms=int(time.time() * 1000)),
    )
