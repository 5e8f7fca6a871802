"""The risk manager's account reconciliation (``account_reconcile_step``): positions nobody of
ours opened, and entry orders nobody is waiting for. Run by the risk watch at its start and
by the beat every 30 s, so a position opened by hand, or left by a run whose journal was
lost, is seen within half a minute whichever process restarted.

- **Unknown positions.** A position is ours when the portfolio holds its symbol, or when the
  journal has a taken WL or PM entry on its symbol and side (the engine rebuilds lost rows
  from the exchange's order history at start). Any other is unknown, and
  ``RiskSettings.unknown_positions`` says what becomes of it (``risk.rules``): ``adopt``
  (the default) leaves it to the TP/SL upkeep when its coin is configured and reports it
  otherwise, ``flatten`` closes it reduce-only, ``report`` only says so (and the TP/SL
  upkeep leaves it alone). Each unknown position is journaled and alerted once (by its
  symbol, positionIdx, side and Bybit's createdTime, remembered in Redis); a flatten is
  journaled each time it runs.
- **Orphaned entry orders.** The engine's entries are market orders: a ``wl-`` order that
  is not reduce-only and still open after ``ORPHAN_AGE_S`` has nobody waiting for it (the
  run that placed it is gone), and is cancelled and journaled.

Exchange errors on one position or order are journaled and the rest still handled; a
failure to read the account raises (the beat retries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core import keys
from core.alerts import alert_send
from core.redis_client import redis_client
from risk import rules
from risk.closed_pnl import journal_owner
from risk.common import FAILED, STRATEGY, TAKEN, decimal_text, side_word
from risk.models import RiskSettings
from risk.rules import UnknownAction
from trading.bybit import BybitGateway, Order, Position
from trading.errors import GatewayError
from trading.flatten import positions_flatten
from trading.models import Coin
from trading.selectors import pm_symbols
from trading.services import decision_record

logger = logging.getLogger(__name__)

ORPHAN_AGE_S = 60
SEEN_TTL_S = 30 * 86400  # a position held longer than this is reported again
ENGINE_ENTRY_PREFIX = "wl-"


@dataclass
class ReconcileResult:
    unknown: list[str] = field(default_factory=list)  # "BTCUSDT long", every pass
    adopted: list[str] = field(default_factory=list)  # newly seen, left to the TP/SL upkeep
    reported: list[str] = field(default_factory=list)  # newly seen, reported only
    flattened: list[str] = field(default_factory=list)
    orphans_cancelled: list[str] = field(default_factory=list)  # orderLinkIds
    failed: list[str] = field(default_factory=list)

    @property
    def found_work(self) -> bool:
        return bool(self.adopted or self.reported or self.flattened or self.orphans_cancelled or self.failed)

    def summary(self) -> dict:
        return {name: list(getattr(self, name)) for name in self.__dataclass_fields__}


def position_is_unknown(position: Position, *, pm: frozenset[str], now: datetime) -> bool:
    """Nobody of ours opened it: not the portfolio's symbol, no taken WL/PM entry on its side."""
    if position.symbol in pm:
        return False
    return journal_owner(symbol=position.symbol, side=side_word(position), closed_at=now) is None


def account_reconcile_step(*, gateway: BybitGateway, now: datetime) -> ReconcileResult:
    policy = RiskSettings.load().unknown_positions
    configured = set(Coin.objects.values_list("symbol", flat=True))
    pm = pm_symbols()
    result = ReconcileResult()
    for position in gateway.positions():
        if not position_is_unknown(position, pm=pm, now=now):
            continue
        label = f"{position.symbol} {side_word(position)}"
        result.unknown.append(label)
        action = rules.unknown_position_action(policy=policy, configured=position.symbol in configured)
        first_sight = _first_sight(position)
        if action is UnknownAction.FLATTEN:
            _unknown_flatten(gateway=gateway, position=position, label=label, now=now, result=result)
        elif first_sight:
            _unknown_note(position=position, action=action, label=label, now=now)
            (result.adopted if action is UnknownAction.ADOPT else result.reported).append(label)
    _orphans_cancel(gateway=gateway, now=now, result=result)
    return result


def _first_sight(position: Position) -> bool:
    name = f"{position.symbol}:{position.position_idx}:{position.side.value}:{_created_ms(position)}"
    return bool(
        redis_client().set(keys.RISK_UNKNOWN_POSITION_SEEN.format(position=name), "1", nx=True, ex=SEEN_TTL_S)
    )


def _created_ms(position: Position) -> int:
    """Bybit's createdTime of the position in ms (0 when it sent none): with the symbol, side
    and positionIdx, what tells this position from a later one on the same symbol."""
    return 0 if position.created_at is None else int(position.created_at.timestamp() * 1000)


def _position_details(position: Position, action: UnknownAction) -> dict:
    return {
        "action": action.value,
        "side": side_word(position),
        "size": decimal_text(position.size),
        "avg_price": decimal_text(position.avg_price),
        "position_idx": position.position_idx,
        "created_at": None if position.created_at is None else position.created_at.isoformat(),
    }


def _unknown_note(*, position: Position, action: UnknownAction, label: str, now: datetime) -> None:
    decision_record(
        strategy=STRATEGY,
        action="unknown_position",
        outcome=TAKEN,
        reason_code=action.value,
        symbol=position.symbol,
        details=_position_details(position, action),
        at=now,
    )
    what = (
        "adopted: it gets its coin's TP/SL"
        if action is UnknownAction.ADOPT
        else "reported only: nothing of ours will touch it"
    )
    alert_send(
        f"Position nobody of ours opened: {side_word(position)} {position.size} {position.symbol} "
        f"at {position.avg_price}, {what} (unknown_positions={action.value}).",
        kind="unknown_position",
    )
    logger.warning("unknown_position %s action=%s size=%s", label, action.value, position.size)


def _unknown_flatten(
    *, gateway: BybitGateway, position: Position, label: str, now: datetime, result: ReconcileResult
) -> None:
    report = positions_flatten(
        gateway=gateway,
        strategy=STRATEGY,
        run_key=f"unknown-{position.symbol}-{_created_ms(position)}",
        symbols=[position.symbol],
        max_rounds=2,
    )
    (result.flattened if report.flat else result.failed).append(label)
    decision_record(
        strategy=STRATEGY,
        action="unknown_position",
        outcome=TAKEN if report.flat else FAILED,
        reason_code=UnknownAction.FLATTEN.value,
        symbol=position.symbol,
        details={
            **_position_details(position, UnknownAction.FLATTEN),
            "flat": report.flat,
            "errors": report.errors,
        },
        at=now,
    )
    alert_send(
        f"Position nobody of ours opened: {side_word(position)} {position.size} {position.symbol} "
        + (
            "closed (unknown_positions=flatten)."
            if report.flat
            else "NOT closed yet; retrying on the next pass."
        ),
        kind="unknown_position",
    )


def _orphans_cancel(*, gateway: BybitGateway, now: datetime, result: ReconcileResult) -> None:
    cutoff = now - timedelta(seconds=ORPHAN_AGE_S)
    for order in gateway.open_orders():
        if not _orphaned(order, cutoff=cutoff):
            continue
        try:
            gateway.cancel_order(symbol=order.symbol, order_link_id=order.order_link_id)
        except GatewayError as error:
            result.failed.append(order.order_link_id)
            logger.warning("orphan_cancel_failed link=%s code=%s", order.order_link_id, error.code)
            continue
        result.orphans_cancelled.append(order.order_link_id)
        decision_record(
            strategy=STRATEGY,
            action="orphan_cancelled",
            outcome=TAKEN,
            reason_code="entry_without_runner",
            symbol=order.symbol,
            order_link_id=order.order_link_id,
            details={"created_at": None if order.created_at is None else order.created_at.isoformat()},
            at=now,
        )


def _orphaned(order: Order, *, cutoff: datetime) -> bool:
    return (
        order.is_open
        and not order.reduce_only
        and order.order_link_id.startswith(ENGINE_ENTRY_PREFIX)
        and order.created_at is not None
        and order.created_at < cutoff
    )
