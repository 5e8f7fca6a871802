"""Panic: lock trading, flatten the account, verify it on the exchange; and the way back out.

One action, many edges: `POST /panic`, the dashboard button, Telegram /close and
`manage.py panic` all call `panic_trigger(by=...)`; the reset edges call `panic_reset`.

Order of a trigger, and why:
1. Lock first (TradingState.panic_locked, published to the engine on commit), so no
   strategy opens anything while the flatten runs.
2. Flatten (`trading.flatten.positions_flatten`): cancel every order, TP/SL included,
   close every position reduce-only from fresh reads, verify, retry what is left.
3. Journal the outcome (Decision, strategy "panic").
4. Alert on Telegram, outside any transaction; an alert failure never fails the panic.

At most one flatten runs at a time. A Redis key (`SET NX PX`, renewed while the
flatten runs, so a crashed process frees it within `RUN_LOCK_TTL_MS`) marks the run;
a second trigger waits for it and reports its result instead of flattening beside it.
Without Redis the panic still runs, unguarded: closes are reduce-only, so a second
flatten beside the first can only be refused (110017), never open anything.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import keys
from core.alerts import alert_send
from core.models import TradingState
from core.redis_client import redis_client
from panic.errors import PanicResetRefused
from panic.fallback import panic_lock_reconcile
from panic.receipt import receipt_lines
from trading.bybit import BybitGateway
from trading.errors import GatewayError
from trading.flatten import FlattenReport, positions_flatten
from trading.models import Decision
from trading.services import decision_record, panic_lock_set, trading_state_publish

logger = logging.getLogger(__name__)

RUN_LOCK_TTL_MS = 30_000
RUN_LOCK_RENEW_S = 10.0
RESULT_TTL_S = 600
JOIN_POLL_S = 0.1

# Defaults; each can be overridden in Django settings (tests use short pauses).
FLATTEN_ROUNDS = 5  # rounds of cancel + close + verify before the panic reports "not flat"
FLATTEN_PAUSE_S = 0.5  # back-off after a round n in which every call failed: n x this
JOIN_WAIT_S = 60.0  # how long a second trigger waits for a running flatten before answering "running"

_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def _setting(name: str, default):
    return getattr(settings, name, default)


@dataclass(frozen=True)
class PanicResult:
    """What a trigger did. `flat` is the exchange's own answer: positions and open orders read
    back empty after the flatten; an account that could not be read is never flat."""

    run_key: str
    by: str
    reason: str
    locked_since: datetime | None
    newly_locked: bool  # False: the lock was already on (a repeat trigger)
    flat: bool
    verified: bool  # the last round read positions and orders without an error
    rounds: int = 0
    cancelled_orders: int = 0
    closed: list[str] = field(default_factory=list)  # symbols a reduce-only close was sent for
    remaining_positions: list[str] = field(default_factory=list)
    remaining_orders: int = 0
    errors: list[str] = field(default_factory=list)
    # The receipt: each cancelled order's id, each accepted close (symbol, side, qty, position
    # index, exposure, orderLinkId, orderId, avg price and realised PnL where the exchange
    # reported them), the orders answered 10006 and sent again, and the phase timings in ms
    # (lock, cancel, closes, verification, total: trigger to verified).
    cancelled: list[str] = field(default_factory=list)
    closes: list[dict] = field(default_factory=list)
    rate_limited: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    joined: bool = False  # this call waited for a concurrent trigger's flatten and reports that
    running: bool = False  # a concurrent flatten was still running when this call stopped waiting

    @property
    def status(self) -> str:
        if self.running:
            return "running"
        return "flat" if self.flat else "not_flat"

    def as_dict(self) -> dict:
        """JSON-ready: times as ISO 8601 UTC strings."""
        data = asdict(self)
        data["locked_since"] = self.locked_since.isoformat() if self.locked_since else None
        data["status"] = self.status
        data["panic_locked"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict, **changes) -> PanicResult:
        names = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in names}
        if values.get("locked_since"):
            values["locked_since"] = datetime.fromisoformat(values["locked_since"])
        values.update(changes)
        return cls(**values)


@dataclass(frozen=True)
class PanicResetResult:
    by: str
    was_locked: bool  # False: nothing to reset (a repeat reset is a no-op)
    locked_since: datetime | None  # when the lifted lock was set
    may_trade: bool  # other switches (halt, daily disable) may still stop trading

    def as_dict(self) -> dict:
        data = asdict(self)
        data["locked_since"] = self.locked_since.isoformat() if self.locked_since else None
        data["panic_locked"] = False
        return data


# -- the run lock --------------------------------------------------------------------


class _RunLock:
    """`panic:run` = this run's key, set only if absent; renewed by a thread while held."""

    def __init__(self, client: redis.Redis, run_key: str) -> None:
        self.client = client
        self.run_key = run_key
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        if not self.client.set(keys.PANIC_RUN, self.run_key, nx=True, px=RUN_LOCK_TTL_MS):
            return False
        self._renewer = threading.Thread(target=self._renew, name="panic-run-lock", daemon=True)
        self._renewer.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(RUN_LOCK_RENEW_S):
            try:
                if not self.client.eval(_RENEW_SCRIPT, 1, keys.PANIC_RUN, self.run_key, RUN_LOCK_TTL_MS):
                    logger.error("panic_run_lock_lost run_key=%s", self.run_key)
                    return
            except redis.RedisError as error:
                logger.warning("panic_run_lock_renew_failed run_key=%s error=%s", self.run_key, error)

    def release(self) -> None:
        self._stop.set()
        try:
            # Compare-and-delete: never free a lock that expired and another run took.
            self.client.eval(_RELEASE_SCRIPT, 1, keys.PANIC_RUN, self.run_key)
        except redis.RedisError as error:
            logger.warning(
                "panic_run_lock_release_failed run_key=%s error=%s (expires by itself)", self.run_key, error
            )


@dataclass
class _Claim:
    lock: _RunLock | None = None  # held: this call runs the flatten (None with `unguarded`)
    unguarded: bool = False  # Redis unavailable: run without the lock
    joined: PanicResult | None = None  # another run finished while we waited: its result
    running_key: str | None = None  # another run was still going when we stopped waiting


def _run_claim(run_key: str, *, wait_s: float) -> _Claim:
    """Take the run lock, or wait for the run holding it and pick up that run's result."""
    try:
        client = redis_client()
        deadline = time.monotonic() + wait_s
        while True:
            lock = _RunLock(client, run_key)
            if lock.acquire():
                return _Claim(lock=lock)
            holder = client.get(keys.PANIC_RUN)
            if holder is None:
                continue  # released between our SET and GET: try again
            while client.get(keys.PANIC_RUN) == holder:
                if time.monotonic() >= deadline:
                    return _Claim(running_key=holder)
                time.sleep(JOIN_POLL_S)
            stored = client.get(keys.PANIC_RESULT.format(run_key=holder))
            if stored is not None:
                return _Claim(joined=PanicResult.from_dict(json.loads(stored), joined=True))
            # The holder ended without a result (it crashed): run our own flatten.
    except redis.RedisError as error:
        logger.error("panic_run_lock_unavailable error=%s (flattening without the run lock)", error)
        return _Claim(unguarded=True)


def _result_store(result: PanicResult) -> None:
    try:
        redis_client().set(
            keys.PANIC_RESULT.format(run_key=result.run_key), json.dumps(result.as_dict()), ex=RESULT_TTL_S
        )
    except redis.RedisError as error:
        logger.warning("panic_result_not_stored run_key=%s error=%s", result.run_key, error)


# -- the lock on trading -------------------------------------------------------------


def _lock_take(*, reason: str, now: datetime) -> tuple[TradingState, bool]:
    """Set the panic lock (keeping the first panic's time and reason); publish on commit."""
    newly_locked = False
    state = None
    try:
        with transaction.atomic():
            state, newly_locked = panic_lock_set(reason=reason, since=now, now=now)
    except redis.RedisError as error:
        # Raised by the on-commit publish, after the row was committed: the engine still
        # reads the row at start; the panic must go on.
        logger.error("panic_lock_not_published error=%s", error)
        state = TradingState.load()
    return state, newly_locked


def _lock_lift(*, now: datetime) -> TradingState | None:
    """Lift the panic lock; None when it was already off (someone else reset it)."""
    try:
        with transaction.atomic():
            lifted = (
                TradingState.objects.filter(pk=1, panic_locked=True).update(
                    panic_locked=False, panic_since=None, panic_reason="", updated_at=now
                )
                == 1
            )
            state = TradingState.objects.get(pk=1)
            if lifted:
                trading_state_publish(state)
    except redis.RedisError as error:
        logger.error("panic_unlock_not_published error=%s", error)
        return TradingState.load()
    return state if lifted else None


# -- the exchange ----------------------------------------------------------------------


def _gateway_for_panic() -> BybitGateway:
    # Not prepared: each preparation step is a round trip before the first cancel. The
    # flatten loads the instrument table beside its first reads, the closes take their
    # positionIdx from the positions read (no mode probe), and a clock that is off is
    # resynced by the first call Bybit refuses with 10002.
    return BybitGateway.from_settings()


def _flatten(gateway: BybitGateway | None, run_key: str) -> FlattenReport:
    report = FlattenReport(run_key=run_key)
    if gateway is None:
        try:
            gateway = _gateway_for_panic()
        except GatewayError as error:  # e.g. live mode without keys
            report.errors.append(f"gateway: {error.code} {error.message}")
            return report
    return positions_flatten(
        gateway=gateway,
        strategy=Decision.Strategy.PANIC,
        run_key=run_key,
        max_rounds=int(_setting("PANIC_FLATTEN_ROUNDS", FLATTEN_ROUNDS)),
        pause_s=float(_setting("PANIC_FLATTEN_PAUSE_S", FLATTEN_PAUSE_S)),
    )


# -- texts -------------------------------------------------------------------------


def panic_text(result: PanicResult) -> str:
    """A human summary of a trigger (alerts, the command, the dashboard, Telegram)."""
    if result.running:
        return (
            f"Panic lock ON. Another panic flatten ({result.run_key}) is still running; "
            "check the result with GET /panic or /status."
        )
    lines = []
    if result.flat:
        lines.append(f"PANIC by {result.by}: account FLAT, verified on the exchange.")
    else:
        lines.append(
            f"PANIC by {result.by}: account NOT FLAT after {result.rounds} round(s). Check the exchange NOW."
        )
    if result.joined:
        lines.append("(This request waited for a panic already running and reports its result.)")
    lines.append(
        f"Closed: {', '.join(result.closed) or 'nothing'}; cancelled orders: {result.cancelled_orders}."
    )
    lines.extend(receipt_lines(closes=result.closes, rounds=result.rounds, timings_ms=result.timings_ms))
    if not result.flat:
        if not result.verified:
            lines.append("The exchange could not be read back, so flatness is unknown.")
        lines.append(
            f"Remaining: positions {', '.join(result.remaining_positions) or 'none'}; "
            f"open orders {result.remaining_orders}."
        )
        if result.errors:
            lines.append("Errors: " + "; ".join(result.errors[:5]))
    lines.append("Trading is LOCKED. Reset: POST /panic/reset, the dashboard, or `manage.py panic --reset`.")
    return "\n".join(lines)


# -- the actions -------------------------------------------------------------------


def panic_trigger(*, by: str, reason: str = "", gateway: BybitGateway | None = None) -> PanicResult:
    """Lock trading, flatten the account, verify it flat on the exchange, journal, alert.

    Idempotent: while locked, a trigger flattens again (reduce-only, so harmless) and keeps
    the first panic's `panic_since` and reason. A trigger that finds another trigger's
    flatten running waits for it (up to PANIC_JOIN_WAIT_S) and returns that result
    (`joined`), or a `running` result when it is still going. Blocking: several seconds
    when the exchange misbehaves; never call it inside a transaction or an event loop.
    """
    triggered = time.perf_counter()
    now = timezone.now()
    reason = (reason.strip() or f"panic by {by}")[:200]
    state, newly_locked = _lock_take(reason=reason, now=now)
    lock_ms = (time.perf_counter() - triggered) * 1000
    run_key = f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    logger.warning("panic_triggered by=%s run_key=%s newly_locked=%s", by, run_key, newly_locked)

    claim = _run_claim(run_key, wait_s=float(_setting("PANIC_JOIN_WAIT_S", JOIN_WAIT_S)))
    if claim.joined is not None or claim.running_key is not None:
        other = claim.running_key or claim.joined.run_key
        decision_record(
            strategy=Decision.Strategy.PANIC,
            action="panic",
            outcome=Decision.Outcome.SKIPPED,
            reason_code="already_running",
            details={"by": by, "reason": reason, "joined_run_key": other},
        )
        if claim.joined is not None:
            return replace(claim.joined, newly_locked=newly_locked)
        return PanicResult(
            run_key=claim.running_key,
            by=by,
            reason=state.panic_reason,
            locked_since=state.panic_since,
            newly_locked=newly_locked,
            flat=False,
            verified=False,
            running=True,
        )

    try:
        try:
            report = _flatten(gateway, run_key)
        except Exception as error:
            logger.exception("panic_failed by=%s run_key=%s", by, run_key)
            try:
                decision_record(
                    strategy=Decision.Strategy.PANIC,
                    action="panic",
                    outcome=Decision.Outcome.FAILED,
                    reason_code="error",
                    details={"by": by, "reason": reason, "run_key": run_key, "error": type(error).__name__},
                )
            except Exception:  # the database may be what failed; the error below matters more
                logger.exception("panic_failure_not_journaled run_key=%s", run_key)
            alert_send(
                f"PANIC by {by} FAILED ({type(error).__name__}) before the account was verified flat. "
                "Positions may still be open: check the exchange NOW.",
                kind="panic",
            )
            raise
        result = PanicResult(
            run_key=run_key,
            by=by,
            reason=state.panic_reason,
            locked_since=state.panic_since,
            newly_locked=newly_locked,
            flat=report.flat,
            verified=report.verified,
            rounds=report.rounds,
            cancelled_orders=report.cancelled_orders,
            closed=sorted(set(report.closes_sent)),
            remaining_positions=list(report.remaining_positions),
            remaining_orders=report.remaining_orders,
            errors=list(report.errors),
            cancelled=list(report.cancelled),
            closes=[close.as_dict() for close in report.closes],
            rate_limited=report.rate_limited,
            timings_ms={
                "lock": round(lock_ms, 1),
                **{phase: round(ms, 1) for phase, ms in report.timings_ms.items()},
                # Trigger to the verification's answer: the journal and the alert come after.
                "total": round(((report.ended_at or time.perf_counter()) - triggered) * 1000, 1),
            },
        )
        decision_record(
            strategy=Decision.Strategy.PANIC,
            action="panic",
            outcome=Decision.Outcome.TAKEN if result.flat else Decision.Outcome.FAILED,
            reason_code="flat" if result.flat else "not_flat",
            details={
                **{k: v for k, v in result.as_dict().items() if k not in ("joined", "running")},
                "requested_reason": reason,  # this trigger's; `reason` is the lock's (the first panic's)
            },
        )
        _result_store(result)
    finally:
        if claim.lock is not None:
            claim.lock.release()
    log = logger.warning if result.flat else logger.error
    log(
        "panic_done by=%s run_key=%s flat=%s verified=%s rounds=%d closed=%s remaining=%s orders=%d",
        by,
        run_key,
        result.flat,
        result.verified,
        result.rounds,
        ",".join(result.closed),
        ",".join(result.remaining_positions),
        result.remaining_orders,
    )
    alert_send(panic_text(result), kind="panic")
    return result


def _account_read(gateway: BybitGateway | None) -> tuple[list[str], int]:
    """Open position symbols and the number of open orders, as the exchange shows them now."""
    try:
        gateway = gateway or BybitGateway.from_settings()
        positions = gateway.positions()
        orders = [order for order in gateway.open_orders() if order.is_open]
    except GatewayError as error:
        raise PanicResetRefused(
            f"The exchange could not be read ({error.code} {error.message}); the panic lock stays on.",
            reason_code="exchange_unreadable",
        ) from None
    return sorted({p.symbol for p in positions}), len(orders)


def _reset_refused(*, by: str, refusal: PanicResetRefused) -> PanicResetRefused:
    decision_record(
        strategy=Decision.Strategy.PANIC,
        action="reset",
        outcome=Decision.Outcome.SKIPPED,
        reason_code=refusal.reason_code,
        details={
            "by": by,
            "remaining_positions": refusal.remaining_positions,
            "remaining_orders": refusal.remaining_orders,
        },
    )
    logger.warning("panic_reset_refused by=%s reason=%s", by, refusal.reason_code)
    return refusal


def panic_reset(*, by: str, gateway: BybitGateway | None = None) -> PanicResetResult:
    """Lift the panic lock, only when the exchange shows no position and no open order.

    Raises `PanicResetRefused` (naming what remains) when the account is not flat, when
    the exchange cannot be read, or while a panic flatten runs. Not locked: a no-op.
    Other switches (a /kill halt, the daily disable) are left as they are.
    """
    try:
        # A lock Telegram /close's fallback held in Redis is written into the row first, so it
        # is reset like any other (and a database that is still down fails the reset here).
        panic_lock_reconcile()
    except redis.RedisError as error:
        logger.warning("panic_lock_reconcile_failed error=%s", type(error).__name__)
    state = TradingState.objects.filter(pk=1).first()
    if state is None or not state.panic_locked:
        now = timezone.now()
        return PanicResetResult(
            by=by, was_locked=False, locked_since=None, may_trade=(state or TradingState()).may_trade(now)
        )
    locked_since = state.panic_since
    # Hold the run lock while checking and unlocking, so a panic cannot start its
    # flatten between our "flat" reading and the unlock.
    lock = None
    try:
        candidate = _RunLock(redis_client(), f"reset-{secrets.token_hex(4)}")
        if not candidate.acquire():
            raise _reset_refused(
                by=by,
                refusal=PanicResetRefused(
                    "A panic flatten is running; try the reset when it has finished.",
                    reason_code="panic_running",
                ),
            )
        lock = candidate
    except redis.RedisError as error:
        logger.error("panic_run_lock_unavailable error=%s (resetting on the exchange check alone)", error)
    try:
        try:
            positions, orders = _account_read(gateway)
        except PanicResetRefused as refusal:
            raise _reset_refused(by=by, refusal=refusal) from None
        if positions or orders:
            raise _reset_refused(
                by=by,
                refusal=PanicResetRefused(
                    "The account is not flat: "
                    f"positions {', '.join(positions) or 'none'}; open orders {orders}. "
                    "The panic lock stays on; trigger the panic again to close them.",
                    reason_code="not_flat",
                    remaining_positions=positions,
                    remaining_orders=orders,
                ),
            )
        now = timezone.now()
        lifted = _lock_lift(now=now)
    finally:
        if lock is not None:
            lock.release()
    if lifted is None:  # another reset got there first
        return PanicResetResult(
            by=by, was_locked=False, locked_since=None, may_trade=TradingState.load().may_trade(now)
        )
    decision_record(
        strategy=Decision.Strategy.PANIC,
        action="reset",
        outcome=Decision.Outcome.TAKEN,
        reason_code="unlocked",
        details={"by": by, "locked_since": locked_since.isoformat() if locked_since else None},
    )
    result = PanicResetResult(
        by=by, was_locked=True, locked_since=locked_since, may_trade=lifted.may_trade(now)
    )
    logger.warning("panic_reset by=%s may_trade=%s", by, result.may_trade)
    alert_send(
        f"Panic lock lifted by {by} (the exchange shows no position and no open order). "
        + ("Trading is allowed." if result.may_trade else "Trading is still stopped by another switch."),
        kind="panic_reset",
    )
    return result
