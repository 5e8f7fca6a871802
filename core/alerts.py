"""The alert hook: services say what happened, an adapter delivers it, within limits.

Services call `alert_send(text, kind=...)`; nothing here knows Telegram. An adapter (the
Telegram bridge, in its `AppConfig.ready()`) registers a sender; until one does, an alert
is only logged. `alert_send` never raises: an alert that cannot go out must not break the
risk or panic action that sent it. Senders are called in the caller's thread and block
(Celery tasks, services, commands); from inside an event loop, don't call this (the
engine hands its alerts to a thread, off the hot path and off its journal flush).

Kinds name what happened; each belongs to a group that `AlertSettings` (core.models, the
admin, `/api/settings/alerts`) switches on or off (`KIND_GROUPS`):

    trades                entry, exit, tpsl_close (WL entries come from the engine's journal
                          flush; WL exits, done by the exchange's TP/SL, from the account
                          snapshot that no longer shows the position: risk.snapshot)
    order_refused         order_refused (the exchange said no: a Bybit retCode), dcp_refused
                          (the DCP window, at engine start: trading goes on without it)
    auth_error            auth_error (10003/10004: the keys are wrong or revoked)
    heartbeat_missing     heartbeat_missing, heartbeat_recovered (core.alert_checks)
    feed_silent           feed_silent, feed_recovered (core.alert_checks)
    daily_limit           daily_limit, daily_rollover
    im                    im_warn, im_reduce
    panic                 panic, panic_reset
    exchange_unreachable  exchange_unreachable, exchange_recovered

The policy, one decision per alert, shared by every process through Redis (one Lua script,
so two workers can't both take the last slot):

1. **Muted**: the kind's group is switched off. Nothing is sent; the alert is listed.
2. **Trade digest**: with `trade_digest_minutes` N > 0 every trade alert is folded into
   the "trades" digest, which goes out N minutes after its first alert.
3. **Rate limit**, per kind: at most `rate_limit_count` messages per `rate_limit_window_s`,
   and a repeat of a text already sent in the window is folded at once (an auth error
   every 2 s is one message). Everything over the limit is folded into that kind's
   digest, which goes out when the window ends and says how many it folded and which
   texts (with counts). While a digest is pending the window stays open, and a digest
   opens the next window as its first message, seeded with its texts: a storm that
   goes on becomes one digest per window, never a flood.
   The first alert of a burst always goes out at once; `URGENT_KINDS` (panic, daily
   limit, IM reduce) are never folded as repeats, only past the count.
4. Otherwise the alert is **delivered**: every registered sender gets it, now.

Every alert, whatever the decision, is pushed onto a capped Redis list (`recent_alerts`,
the dashboard's "last alerts"): time, kind, text, and `delivered`, `folded`, `muted` or
`digest`. Digests are sent by `alert_digests_flush` (Celery beat, `core.alert_digests_flush`,
every 10 s). If Redis or the database can't be read, the alert is delivered unlimited:
losing a panic alert is worse than a duplicate.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from core import keys

logger = logging.getLogger(__name__)

AlertSender = Callable[..., object]  # sender(text, *, kind)

_senders: dict[str, AlertSender] = {}

KIND_GROUPS = {
    "entry": "trades",
    "exit": "trades",
    "tpsl_close": "trades",
    "order_refused": "order_refused",
    "dcp_refused": "order_refused",  # Bybit refused an optional account feature (DCP)
    "auth_error": "auth_error",
    "heartbeat_missing": "heartbeat_missing",
    "heartbeat_recovered": "heartbeat_missing",
    "feed_silent": "feed_silent",
    "feed_recovered": "feed_silent",
    "daily_limit": "daily_limit",
    "daily_rollover": "daily_limit",
    "im_warn": "im",
    "im_reduce": "im",
    "panic": "panic",
    "panic_reset": "panic",
    "exchange_unreachable": "exchange_unreachable",
    "exchange_recovered": "exchange_unreachable",
}
TRADE_DIGEST = "trades"  # the bucket of the trade digest
URGENT_KINDS = frozenset({"panic", "panic_reset", "daily_limit", "im_reduce"})

DELIVERED, FOLDED, MUTED, DIGEST = "delivered", "folded", "muted", "digest"
RECENT_ALERTS = 100  # kept in the Redis list
RECENT_TEXT_CHARS = 500  # of each alert's text, in the list
DIGEST_LINES = 10  # distinct texts a digest lists
DIGEST_TEXTS_KEPT = 50  # distinct texts a digest counts one by one; more only add to its total

# KEYS: window hash, digest hash, due zset. ARGV: bucket, text, now, mode ("limit" or
# "digest"), period_s (the window, or the digest period), limit, fold_repeats ("1"/"0"),
# texts_kept (distinct texts counted one by one).
_ADMIT = """
local window, digest, due = KEYS[1], KEYS[2], KEYS[3]
local bucket, text, now, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local period, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
local function fold(due_at)
  local field = 't:' .. text
  local n = redis.call('HINCRBY', digest, 'n', 1)
  if redis.call('HEXISTS', digest, field) == 1 then
    redis.call('HINCRBY', digest, field, 1)
  elseif redis.call('HLEN', digest) <= 2 * tonumber(ARGV[8]) then
    redis.call('HSET', digest, field, 1, 'o:' .. text, n)
  end
  redis.call('ZADD', due, 'NX', due_at, bucket)
  return 'folded'
end
if mode == 'digest' then return fold(now + period) end
local start = tonumber(redis.call('HGET', window, 'start') or '')
local pending = redis.call('ZSCORE', due, bucket)
if not start or (not pending and now >= start + period) then
  redis.call('DEL', window)
  redis.call('HSET', window, 'start', now, 'count', 0)
  start = now
end
redis.call('EXPIRE', window, math.ceil(period * 2 + 60))
local seen_field = 't:' .. redis.sha1hex(text)
local seen = ARGV[7] == '1' and redis.call('HEXISTS', window, seen_field) == 1
if not seen and tonumber(redis.call('HGET', window, 'count')) < limit then
  redis.call('HINCRBY', window, 'count', 1)
  redis.call('HSET', window, seen_field, 1)
  return 'delivered'
end
return fold(start + period)
"""

# KEYS: window hash, digest hash, due zset. ARGV: bucket, now, window_s (0: no window to open).
# Takes the digest and, for a rate-limited kind, opens the next window with the digest as
# its first message and its texts as already sent.
_TAKE_DIGEST = """
local window, digest, due = KEYS[1], KEYS[2], KEYS[3]
local entries = redis.call('HGETALL', digest)
redis.call('DEL', digest)
redis.call('ZREM', due, ARGV[1])
local window_s = tonumber(ARGV[3])
if window_s > 0 and #entries > 0 then
  redis.call('DEL', window)
  redis.call('HSET', window, 'start', ARGV[2], 'count', 1)
  for i = 1, #entries, 2 do
    if string.sub(entries[i], 1, 2) == 't:' then
      redis.call('HSET', window, 't:' .. redis.sha1hex(string.sub(entries[i], 3)), 1)
    end
  end
  redis.call('EXPIRE', window, math.ceil(window_s * 2 + 60))
end
return entries
"""


def alert_sender_register(name: str, sender: AlertSender) -> None:
    """Add (or replace) the sender called `name`."""
    _senders[name] = sender


def alert_sender_unregister(name: str) -> None:
    _senders.pop(name, None)


def alert_send(text: str, *, kind: str, now: float | None = None) -> str:
    """Decide (muted, folded or delivered), list it, and deliver it if so. Never raises.

    Returns the decision. `now` is unix seconds (tests pass their own).
    """
    now = time.time() if now is None else now
    try:
        decision = _admit(text, kind=kind, now=now)
    except Exception as error:  # Redis or the database is down: deliver, unlimited
        logger.warning("alert_limit_unavailable kind=%s error=%s", kind, type(error).__name__)
        decision = DELIVERED
    _record(kind=kind, text=text, status=decision, now=now)
    if decision == DELIVERED:
        _deliver(text, kind=kind)
    else:
        logger.info("alert_%s kind=%s", decision, kind)
    return decision


def _settings():
    from core.models import AlertSettings

    return AlertSettings.load()


def _group_enabled(settings, group: str) -> bool:
    return bool(getattr(settings, group, True))  # a kind outside every group is always on


def _admit(text: str, *, kind: str, now: float) -> str:
    from core.redis_client import redis_client

    settings = _settings()
    group = KIND_GROUPS.get(kind, kind)
    if not _group_enabled(settings, group):
        return MUTED
    if group == TRADE_DIGEST and settings.trade_digest_minutes > 0:
        bucket, mode, period = TRADE_DIGEST, "digest", settings.trade_digest_minutes * 60
    else:
        bucket, mode, period = kind, "limit", settings.rate_limit_window_s
    client = redis_client()
    return client.eval(
        _ADMIT,
        3,
        keys.ALERTS_WINDOW.format(bucket=bucket),
        keys.ALERTS_DIGEST.format(bucket=bucket),
        keys.ALERTS_DIGEST_DUE,
        bucket,
        text,
        repr(now),
        mode,
        period,
        settings.rate_limit_count,
        "0" if kind in URGENT_KINDS else "1",
        DIGEST_TEXTS_KEPT,
    )


def _deliver(text: str, *, kind: str) -> None:
    """Hand `text` to every registered sender; log, never raise, when one fails."""
    if not _senders:
        logger.info("alert_not_sent kind=%s reason=no_sender", kind)
        return
    for name, sender in list(_senders.items()):
        try:
            sender(text, kind=kind)
        except Exception as error:  # the last guard: a sender reports its own failures
            logger.error("alert_failed kind=%s sender=%s error=%s", kind, name, type(error).__name__)


def _record(*, kind: str, text: str, status: str, now: float) -> None:
    from core.redis_client import redis_client

    row = {
        "at": datetime.fromtimestamp(now, tz=UTC).isoformat(),
        "kind": kind,
        "status": status,
        "text": text if len(text) <= RECENT_TEXT_CHARS else text[: RECENT_TEXT_CHARS - 1] + "…",
    }
    try:
        with redis_client().pipeline(transaction=True) as pipe:
            pipe.lpush(keys.ALERTS_RECENT, json.dumps(row))
            pipe.ltrim(keys.ALERTS_RECENT, 0, RECENT_ALERTS - 1)
            pipe.execute()
    except Exception as error:  # the list is for the dashboard; the alert itself matters more
        logger.warning("alert_record_failed kind=%s error=%s", kind, type(error).__name__)


# -- digests ------------------------------------------------------------------------------


def digest_text(bucket: str, entries: dict[str, str]) -> str:
    """Pure: the digest message from the folded `entries`: "n" (how many), and per text
    "t:<text>" (how many times) and "o:<text>" (its first arrival). The most repeated
    texts first, then in order of arrival."""
    total = int(entries.get("n", 0))
    first = {field[2:]: int(order) for field, order in entries.items() if field.startswith("o:")}
    counted = [(int(count), field[2:]) for field, count in entries.items() if field.startswith("t:")]
    counted.sort(key=lambda pair: (-pair[0], first.get(pair[1], 0)))
    if bucket == TRADE_DIGEST:
        head = f"Trades digest: {total} alert{'s' if total != 1 else ''}."
    else:
        head = f"{bucket}: {total} more alert{'s' if total != 1 else ''} folded by the rate limit."
    lines = [head]
    for count, text in counted[:DIGEST_LINES]:
        first_line = text.splitlines()[0] if text else ""
        lines.append(f"{count}× {first_line[:200]}" if count > 1 else f"• {first_line[:200]}")
    shown = sum(count for count, _ in counted[:DIGEST_LINES])
    if total > shown:
        lines.append(f"… and {total - shown} more.")
    return "\n".join(lines)


def alert_digests_flush(*, now: float | None = None) -> int:
    """Send every digest that is due; return how many went out. Never raises per digest."""
    from core.redis_client import redis_client

    now = time.time() if now is None else now
    client = redis_client()
    due = client.zrangebyscore(keys.ALERTS_DIGEST_DUE, "-inf", now)
    if not due:
        return 0
    settings = _settings()
    sent = 0
    for bucket in due:
        window_s = 0 if bucket == TRADE_DIGEST else settings.rate_limit_window_s
        raw = client.eval(
            _TAKE_DIGEST,
            3,
            keys.ALERTS_WINDOW.format(bucket=bucket),
            keys.ALERTS_DIGEST.format(bucket=bucket),
            keys.ALERTS_DIGEST_DUE,
            bucket,
            repr(now),
            window_s,
        )
        entries = dict(zip(raw[::2], raw[1::2], strict=True))
        if not entries:
            continue
        text = digest_text(bucket, entries)
        if not _group_enabled(settings, KIND_GROUPS.get(bucket, bucket)):
            _record(kind=bucket, text=text, status=MUTED, now=now)
            continue
        _record(kind=bucket, text=text, status=DIGEST, now=now)
        _deliver(text, kind=bucket)
        sent += 1
    return sent


def recent_alerts(*, limit: int = 20, client=None) -> list[dict]:
    """The last alerts, newest first, as recorded (for the dashboard)."""
    from core.redis_client import redis_client

    rows = []
    for raw in (client or redis_client()).lrange(keys.ALERTS_RECENT, 0, limit - 1):
        try:
            rows.append(json.loads(raw))
        except (TypeError, ValueError):
            continue
    return rows
