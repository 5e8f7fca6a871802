"""Whether the exchange answers: the last good answer, the last error, since when.

The worker's account snapshot (every 2 s) is the probe: each read records success or
failure here, and every periodic exchange task records its failures too (a gateway that
cannot even be prepared never reaches the snapshot). The health report, the status
snapshot, the dashboard, ``/status`` and ``/api/health`` read it; nothing else decides
whether the exchange is down.

One Redis hash, ``keys.EXCHANGE_STATUS``, of plain fields, so concurrent tasks need no
lock: ``last_ok_ms``; ``last_error``, ``last_error_kind``, ``last_error_ms``;
``failing_since_ms`` (set by the first failure after a success, removed by a success);
``alerted`` (set once per outage when the alert went out).

States, judged at read time (pure): ``ok``; ``unreachable`` (no answer: timeout,
connection refused, HTTP 5xx); ``refused`` (it answers, with an error: keys refused, IP
banned...); ``unknown`` (no probe recorded yet, or none for ``PROBE_STALE_S``: the
worker is down, which the process health says too).

A refused API key is a ``refused`` state with ``key_refused`` set: its recorded error is
already the plain words of what to fix (``trading.alerting.auth_error_text``), and the
problem line is those words, not "refusing our calls".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core import keys
from core.redis_client import redis_client

# A failure is alerted once it has lasted this long without a good answer in between:
# one dropped request is not an outage.
ALERT_AFTER_S = 10.0
# The snapshot probes every 2 s: with nothing recorded for this long, nobody is probing.
PROBE_STALE_S = 30.0

UNREACHABLE, REFUSED = "unreachable", "refused"
# A failure kind, recorded by the trading side: the API key itself was refused (a REFUSED state).
KEY_REFUSED = "key_refused"


@dataclass(frozen=True)
class ExchangeStatus:
    state: str  # ok | unreachable | refused | unknown
    last_ok_ms: int | None
    last_error: str
    last_error_ms: int | None
    failing_since_ms: int | None
    key_refused: bool = False  # the refusal is of the API key (last_error says what to fix)

    @property
    def failing(self) -> bool:
        """It does not answer, or answers every call with a refusal ("unknown" is not failing:
        the process health speaks for a worker that is down)."""
        return self.state in (UNREACHABLE, REFUSED)

    @property
    def problem(self) -> str:
        """One line for a banner or a message ("" when the exchange answers)."""
        if self.state == "ok":
            return ""
        if self.state == "unknown":
            return "Exchange status unknown: no recent exchange call (is the worker running?)"
        since = "" if self.failing_since_ms is None else f" since {_clock(self.failing_since_ms)} UTC"
        if self.key_refused:
            return f"{self.last_error} (refused{since})" if since else self.last_error
        what = "unreachable" if self.state == UNREACHABLE else "refusing our calls"
        return f"Exchange {what}{since}: {self.last_error}"

    def as_dict(self) -> dict:
        return {
            "state": self.state,
            "failing": self.failing,
            "key_refused": self.key_refused,
            "problem": self.problem,
            "last_ok_ms": self.last_ok_ms,
            "last_error": self.last_error,
            "last_error_ms": self.last_error_ms,
            "failing_since_ms": self.failing_since_ms,
        }


def _clock(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000))


def _int(raw) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def exchange_status_judge(raw: dict, *, now_ms: int) -> ExchangeStatus:
    """Pure: the state from the hash's fields (strings, as Redis returns them)."""
    last_ok = _int(raw.get("last_ok_ms"))
    last_error_ms = _int(raw.get("last_error_ms"))
    failing_since = _int(raw.get("failing_since_ms"))
    last_seen = max(last_ok or 0, last_error_ms or 0)
    if not last_seen or now_ms - last_seen > PROBE_STALE_S * 1000:
        state = "unknown"
    elif failing_since is None:
        state = "ok"
    else:
        state = REFUSED if raw.get("last_error_kind") in (REFUSED, KEY_REFUSED) else UNREACHABLE
    return ExchangeStatus(
        state=state,
        last_ok_ms=last_ok,
        last_error=raw.get("last_error", ""),
        last_error_ms=last_error_ms,
        failing_since_ms=failing_since,
        key_refused=state == REFUSED and raw.get("last_error_kind") == KEY_REFUSED,
    )


def exchange_status_read(*, client=None, now_ms: int | None = None) -> ExchangeStatus:
    raw = (client or redis_client()).hgetall(keys.EXCHANGE_STATUS)
    return exchange_status_judge(raw, now_ms=now_ms or int(time.time() * 1000))


def exchange_ok_record(*, client=None, now_ms: int | None = None) -> bool:
    """A good answer. True when it ends an outage that was alerted (say it recovered)."""
    client = client or redis_client()
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(keys.EXCHANGE_STATUS, "last_ok_ms", now_ms or int(time.time() * 1000))
        pipe.hdel(keys.EXCHANGE_STATUS, "failing_since_ms")
        pipe.hdel(keys.EXCHANGE_STATUS, "alerted")
        _, _, alerted = pipe.execute()
    return bool(alerted)


def exchange_failure_record(
    *, kind: str, error: str, client=None, now_ms: int | None = None, alert_after_s: float | None = None
) -> bool:
    """A failed call (``kind``: UNREACHABLE, REFUSED or KEY_REFUSED). True exactly once per outage:
    when it has lasted ``alert_after_s`` (default ``ALERT_AFTER_S``; 0 for a refused key, which
    no retry cures), and the caller alerts."""
    alert_after_s = ALERT_AFTER_S if alert_after_s is None else alert_after_s
    client = client or redis_client()
    now_ms = now_ms or int(time.time() * 1000)
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.EXCHANGE_STATUS,
            mapping={"last_error": error[:300], "last_error_kind": kind, "last_error_ms": now_ms},
        )
        pipe.hsetnx(keys.EXCHANGE_STATUS, "failing_since_ms", now_ms)
        pipe.hget(keys.EXCHANGE_STATUS, "failing_since_ms")
        *_, since = pipe.execute()
    if now_ms - (_int(since) or now_ms) < alert_after_s * 1000:
        return False
    return bool(client.hsetnx(keys.EXCHANGE_STATUS, "alerted", now_ms))
