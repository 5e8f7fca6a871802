"""Trading-side actions: the trading switches, config-change notices, the instrument table.

The database is the record; Redis carries each change to the engine at once:
- `controlpanel:trading_state` holds the switches as JSON (read at engine start),
- a message on the `controlpanel:events:<db>` channel tells subscribers something changed
  (`trading_state` within milliseconds, `config` when coins or settings were edited).
Messages are published on commit, so no process ever acts on a change that rolled back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

import redis
from django.db import transaction
from django.utils import timezone

from core import keys
from core.models import TradingState
from core.panic_lock import fallback_lock_read, switches_merge
from core.redis_client import events_channel, redis_client
from trading.models import Coin, Decision, Instrument

logger = logging.getLogger(__name__)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def trading_state_payload(state: TradingState) -> dict:
    """The switches as plain JSON data (times in ms since the epoch, UTC)."""
    return {
        "panic_locked": state.panic_locked,
        "panic_since_ms": _ms(state.panic_since),
        "panic_reason": state.panic_reason,
        "disabled_until_ms": _ms(state.disabled_until),
        "disabled_reason": state.disabled_reason,
        "halted": state.halted,
        "halted_by": state.halted_by,
    }


def events_publish(kind: str, payload: dict | None = None) -> None:
    """Publish an event now (callers inside a transaction use `on_commit`)."""
    message = json.dumps({"type": kind, **(payload or {})})
    client = redis_client()
    if kind == "trading_state" and payload is not None:
        client.set(keys.TRADING_STATE, json.dumps(payload))
    client.publish(events_channel(), message)


def trading_state_publish(state: TradingState | None = None) -> None:
    state = state or TradingState.load()
    # On commit, with the panic lock the database could not take yet (core.panic_lock)
    # merged in: a /resume before that lock is reconciled must not unlock the engine.
    transaction.on_commit(
        lambda: events_publish(
            "trading_state", trading_state_payload(switches_merge(state, fallback_lock_read()))
        )
    )


def _state_update(**changes) -> TradingState:
    with transaction.atomic():
        state = TradingState.objects.select_for_update().filter(pk=1).first() or TradingState.load()
        for name, value in changes.items():
            setattr(state, name, value)
        state.save()
        trading_state_publish(state)
    return state


def panic_lock_set(*, reason: str, since: datetime, now: datetime) -> tuple[TradingState, bool]:
    """Set the panic lock unless it is on (a conditional UPDATE: the first panic's time and
    reason stay), and publish the switches on commit. Call it inside a transaction.
    Returns the row and whether this call set the lock."""
    TradingState.load()  # the row exists from here on
    newly_locked = (
        TradingState.objects.filter(pk=1, panic_locked=False).update(
            panic_locked=True, panic_since=since, panic_reason=reason, updated_at=now
        )
        == 1
    )
    state = TradingState.objects.get(pk=1)
    trading_state_publish(state)  # re-sent on a repeat too: it costs nothing and heals a lost message
    return state, newly_locked


def trading_halt(*, by: str, reason: str = "") -> TradingState:
    """Stop every strategy until `trading_resume` (Telegram /kill, the API)."""
    now = timezone.now()
    state = _state_update(halted=True, halted_since=now, halted_by=by[:100])
    decision_record(
        strategy=Decision.Strategy.MANUAL,
        action="halt",
        outcome=Decision.Outcome.TAKEN,
        reason_code="halted",
        details={"by": by, "reason": reason},
    )
    return state


def trading_resume(*, by: str) -> TradingState:
    state = _state_update(halted=False, halted_since=None, halted_by="")
    decision_record(
        strategy=Decision.Strategy.MANUAL,
        action="resume",
        outcome=Decision.Outcome.TAKEN,
        reason_code="resumed",
        details={"by": by},
    )
    return state


def trading_disable_until(*, until: datetime, reason: str) -> TradingState:
    """Stop trading until `until` (UTC), e.g. the daily target or stop until the next day."""
    return _state_update(disabled_until=until, disabled_reason=reason[:200])


def trading_enable() -> TradingState:
    return _state_update(disabled_until=None, disabled_reason="")


def decision_record(
    *,
    strategy: str,
    action: str,
    outcome: str,
    symbol: str = "",
    reason_code: str = "",
    details: dict | None = None,
    order_link_id: str = "",
    at: datetime | None = None,
) -> Decision:
    """Journal one decision (off the hot path; the engine batches through `decisions_record`)."""
    return Decision.objects.create(
        created_at=at or timezone.now(),
        strategy=strategy,
        symbol=symbol,
        action=action,
        outcome=outcome,
        reason_code=reason_code,
        details=details or {},
        order_link_id=order_link_id,
    )


def decisions_record(decisions: Iterable[Decision]) -> int:
    """Journal many decisions in one statement."""
    return len(Decision.objects.bulk_create(list(decisions)))


def journal_prune(*, keep_skipped_days: int = 30, now: datetime | None = None) -> int:
    """Delete skipped decisions older than `keep_skipped_days`; taken and failed ones stay.

    The engine journals every skip of a configured coin, which adds up; the orders and
    failures are the record and are never pruned.
    """
    cutoff = (now or timezone.now()) - timedelta(days=keep_skipped_days)
    deleted, _ = Decision.objects.filter(outcome=Decision.Outcome.SKIPPED, created_at__lt=cutoff).delete()
    return deleted


def config_changed() -> None:
    """Tell the engine (and other readers) that coins or settings changed; on commit."""
    transaction.on_commit(_config_publish)


_config_warned_at: list[float] = []  # when the last "not published" warning went out


def _config_publish() -> None:
    # The edit is committed by now; a Redis that does not answer must not turn it into a
    # failure (a command's traceback, an admin's error page): the engine also reloads the
    # configuration on a timer and at every (re)subscription. An import saves a dozen
    # rows, each with its notice: one warning a minute says it all.
    try:
        events_publish("config")
    except redis.RedisError as error:
        now = time.monotonic()
        if _config_warned_at and now - _config_warned_at[-1] < 60:
            return
        _config_warned_at[:] = [now]
        logger.warning(
            "config_change_not_published error=%s (Redis does not answer; the edit is saved, "
            "and a running engine reads it at its next reload, within 30 s)",
            type(error).__name__,
        )


def demo_coins_disable(*, mode: str) -> list[str]:
    """Outside sim, switch off the demo configuration's coins; return every demo coin left.

    `make run` loads a demo configuration for the simulator (7 coins, 10 USDT margin at
    10x); it must not trade a real account because the owner changed EXCHANGE_MODE. A
    demo coin stays off until the owner enables it (admin, API) or imports their own.
    """
    with transaction.atomic():
        switched = list(Coin.objects.filter(demo=True, enabled=True).values_list("symbol", flat=True))
        if switched:
            Coin.objects.filter(symbol__in=switched).update(enabled=False)
            decision_record(
                strategy=Decision.Strategy.MANUAL,
                action="disable",
                outcome=Decision.Outcome.TAKEN,
                reason_code="demo_coins_outside_sim",
                details={"mode": mode, "symbols": switched},
            )
            config_changed()
    return list(Coin.objects.filter(demo=True).values_list("symbol", flat=True))


def instruments_store(instruments) -> int:
    """Replace the instrument table with the venue's list (from `BybitGateway.fetch_instruments`).

    Coin and allowlist validation read this table; symbols the venue no longer lists
    are kept with status "Delisted" so coins that reference them fail validation
    instead of vanishing silently.
    """
    now = timezone.now()
    seen = set()
    with transaction.atomic():
        for instrument in instruments:
            seen.add(instrument.symbol)
            Instrument.objects.update_or_create(
                symbol=instrument.symbol,
                defaults={
                    "status": instrument.status or "Trading",
                    "qty_step": instrument.qty_step,
                    "min_order_qty": instrument.min_order_qty,
                    "max_order_qty": instrument.max_order_qty or 0,
                    "max_market_order_qty": instrument.max_market_order_qty or 0,
                    "min_notional_value": instrument.min_notional_value or 0,
                    "tick_size": instrument.tick_size,
                    "max_leverage": instrument.max_leverage or 1,
                    "updated_at": now,
                },
            )
        Instrument.objects.exclude(symbol__in=seen).update(status="Delisted", updated_at=now)
    return len(seen)
