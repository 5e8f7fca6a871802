"""The risk manager's IM% watch (``im_watch_step``, every 5 s): the warn alert and the
reduction of every position the portfolio strategy does not hold.

Shared state between workers lives in Redis, with TTLs: the IM warn-alert interval and the
IM reduce cooldown (claimed with SET NX EX so only one worker reduces).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core import keys
from core.alerts import alert_send
from core.redis_client import redis_client
from risk import rules
from risk.common import FAILED, SKIPPED, STRATEGY, TAKEN, decimal_text, pct_text, side_word
from risk.models import RiskSettings
from risk.rules import ImAction
from risk.snapshot import position_owner
from trading.bybit import BybitGateway, OrderAck, Position
from trading.errors import GatewayError, OrderOutcomeUnknown
from trading.models import Coin
from trading.order_flow import OrderJournal, OrderStatus, order_send
from trading.rules.order_link_id import order_link_id
from trading.selectors import pm_symbols
from trading.services import decision_record

logger = logging.getLogger(__name__)

# After an IM reduction that placed no order at all, the next try comes this much sooner.
IM_REDUCE_FAILED_RETRY_S = 30

# Re-time a key only if it still holds our value: a cooldown another run now owns is kept.
_EXPIRE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass
class ImWatchResult:
    im_pct: Decimal
    action: str  # risk.rules.ImAction
    warned: bool = False  # an IM alert went out this pass
    cooldown: bool = False  # a reduction was due but another one holds the cooldown
    run_key: str = ""  # the reduction run this pass made
    reduced: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def found_work(self) -> bool:
        return self.warned or bool(self.reduced or self.failed)

    def summary(self) -> dict:
        return {
            "im_pct": decimal_text(self.im_pct),
            "action": self.action,
            "warned": self.warned,
            "cooldown": self.cooldown,
            "run_key": self.run_key,
            "reduced": list(self.reduced),
            "failed": list(self.failed),
        }


def im_watch_step(*, gateway: BybitGateway, now: datetime) -> ImWatchResult:
    """One look at the account's initial-margin ratio.

    - IM% >= ``im_reduce_pct``: cut every position the portfolio strategy does not
      hold by ``reduce_fraction`` with reduce-only market orders (``risk.rules.reduce_qty``:
      rounded down to the qty step; a position too small for that is closed whole).
      One reduction per ``reduce_cooldown_seconds``, claimed in Redis with SET NX EX,
      so two workers never both reduce. Each order's orderLinkId derives from the
      reduction's run key. A reduction that placed nothing shortens its cooldown to
      IM_REDUCE_FAILED_RETRY_S, so a later pass tries again soon.
          With nothing of ours left to cut (every position the portfolio's), the claim still
      holds the cooldown and the alert lists what holds the margin: symbol, side, size, IM
      and owner of each position, every cooldown while it lasts; nothing is closed.
    - IM% >= ``im_warn_pct`` (or a reduction is cooling down): an alert, at most once
      per ``reduce_cooldown_seconds``.
    A failure to read the wallet or the positions raises (the task retries).
    """
    risk = RiskSettings.load()
    wallet = gateway.wallet()
    action = rules.im_action(im_pct=wallet.im_pct, warn_pct=risk.im_warn_pct, reduce_pct=risk.im_reduce_pct)
    result = ImWatchResult(im_pct=wallet.im_pct, action=action.value)
    if action is ImAction.NONE:
        return result
    if action is ImAction.REDUCE:
        _im_reduce(gateway=gateway, risk=risk, im_pct=wallet.im_pct, now=now, result=result)
        if result.run_key:
            return result  # this pass ran a reduction, and its alert said it all
    _im_warn(risk=risk, im_pct=wallet.im_pct, now=now, result=result)
    return result


def _im_pct_text(im_pct: Decimal) -> str:
    """IM% to two decimals (the gateway's quotient has many)."""
    return "infinite" if not im_pct.is_finite() else str(im_pct.quantize(Decimal("0.01")))


def _im_warn(*, risk: RiskSettings, im_pct: Decimal, now: datetime, result: ImWatchResult) -> None:
    if not redis_client().set(keys.RISK_IM_WARN, now.isoformat(), nx=True, ex=risk.reduce_cooldown_seconds):
        return
    result.warned = True
    above_reduce = result.action == ImAction.REDUCE.value
    decision_record(
        strategy=STRATEGY,
        action="im_warn",
        outcome=TAKEN,
        reason_code="im_reduce_cooldown" if above_reduce else "im_warn",
        details={
            "im_pct": _im_pct_text(im_pct),
            "im_warn_pct": decimal_text(risk.im_warn_pct),
            "im_reduce_pct": decimal_text(risk.im_reduce_pct),
        },
        at=now,
    )
    logger.warning("im_warn im_pct=%s warn_pct=%s", _im_pct_text(im_pct), risk.im_warn_pct)
    if above_reduce:
        text = (
            f"IM {_im_pct_text(im_pct)} % is above the reduce level {pct_text(risk.im_reduce_pct)} %; "
            f"the next reduction waits for its cooldown."
        )
    else:
        text = (
            f"IM {_im_pct_text(im_pct)} % is above the warn level {pct_text(risk.im_warn_pct)} % "
            f"(reduce at {pct_text(risk.im_reduce_pct)} %). New liquidation entries are blocked."
        )
    alert_send(text, kind="im_warn", now=now.timestamp())  # the rate limit on the step's clock


def _im_reduce(
    *, gateway: BybitGateway, risk: RiskSettings, im_pct: Decimal, now: datetime, result: ImWatchResult
) -> None:
    client = redis_client()
    if client.exists(keys.RISK_IM_REDUCE):  # cooling down: no need to read the positions
        result.cooldown = True
        return
    managed_by_pm = pm_symbols()
    held = gateway.positions()
    positions = [p for p in held if p.symbol not in managed_by_pm]
    run_key = f"im-{now:%Y%m%dT%H%M%S}"
    # Claimed only after the positions were read: a failed read must not hold the cooldown.
    if not client.set(keys.RISK_IM_REDUCE, run_key, nx=True, ex=risk.reduce_cooldown_seconds):
        result.cooldown = True
        return
    result.run_key = run_key
    if not positions:
        _margin_holders_alert(
            positions=held, pm=managed_by_pm, risk=risk, im_pct=im_pct, run_key=run_key, now=now
        )
        return
    maybe_placed = False
    lines = []
    for position in positions:
        outcome, placed, line = _position_reduce(
            gateway=gateway, position=position, fraction=risk.reduce_fraction, run_key=run_key, now=now
        )
        maybe_placed = maybe_placed or placed
        (result.reduced if outcome == TAKEN else result.failed).append(position.symbol)
        lines.append(line)
    if not maybe_placed:
        # Nothing reached the venue: shorten the cooldown so a later pass tries again soon
        # (not at once: a venue refusing every order would otherwise be hit every 5 s).
        retry_s = min(IM_REDUCE_FAILED_RETRY_S, risk.reduce_cooldown_seconds)
        client.eval(_EXPIRE_IF_EQUAL, 1, keys.RISK_IM_REDUCE, run_key, retry_s)
    logger.warning(
        "im_reduce run_key=%s im_pct=%s reduced=%s failed=%s",
        run_key,
        _im_pct_text(im_pct),
        ",".join(result.reduced),
        ",".join(result.failed),
    )
    alert_send(
        f"IM {_im_pct_text(im_pct)} % >= {pct_text(risk.im_reduce_pct)} %: reducing exposure by "
        f"{pct_text(risk.reduce_fraction * 100)} %.\n" + "\n".join(lines),
        kind="im_reduce",
    )


def _margin_holders_alert(
    *,
    positions: list[Position],
    pm: frozenset[str],
    risk: RiskSettings,
    im_pct: Decimal,
    run_key: str,
    now: datetime,
) -> None:
    """IM above the reduce level and nothing of ours left to cut: say loudly, once per cooldown
    (the claim above), what holds the margin, biggest IM first. PM's positions are the
    portfolio's to manage (its budget and trailing stops), so nothing of theirs is closed here."""
    wl = frozenset(Coin.objects.values_list("symbol", flat=True))
    holders = sorted(positions, key=lambda p: p.position_im or Decimal("0"), reverse=True)
    rows = [
        {
            "symbol": p.symbol,
            "side": side_word(p),
            "size": decimal_text(p.size),
            "im": decimal_text(p.position_im),
            "owner": position_owner(p.symbol, pm=pm, wl=wl),
        }
        for p in holders
    ]
    decision_record(
        strategy=STRATEGY,
        action="reduce",
        outcome=SKIPPED,
        reason_code="no_reducible_positions",
        details={"run_key": run_key, "im_pct": _im_pct_text(im_pct), "margin_holders": rows},
        at=now,
    )
    logger.warning(
        "im_reduce_nothing_to_cut im_pct=%s holders=%s",
        _im_pct_text(im_pct),
        ",".join(f"{row['symbol']}:{row['owner']}:{row['im']}" for row in rows),
    )
    # This alert is the cooldown's IM alert: the warn ("the next reduction waits") would repeat it.
    redis_client().set(keys.RISK_IM_WARN, now.isoformat(), ex=risk.reduce_cooldown_seconds)
    lines = [
        f"{row['symbol']} {row['side']} {row['size']} ({row['owner']}): IM {row['im'] or 'unknown'} USDT"
        for row in rows
    ]
    alert_send(
        f"IM {_im_pct_text(im_pct)} % is above the reduce level {pct_text(risk.im_reduce_pct)} % and no "
        f"position of ours is left to cut; the portfolio's are its own to manage, so nothing was closed. "
        f"The margin is held by:\n" + ("\n".join(lines) or "no open position (orders?)") + "\n"
        f"Next check in {risk.reduce_cooldown_seconds} s.",
        kind="im_reduce",
    )


def _journal_write(
    *,
    action: str,
    outcome: str,
    reason_code: str,
    now: datetime,
    symbol: str = "",
    details: dict | None = None,
    order_link_id: str = "",
) -> None:
    decision_record(
        strategy=STRATEGY,
        symbol=symbol,
        action=action,
        outcome=outcome,
        reason_code=reason_code,
        details=details,
        order_link_id=order_link_id,
        at=now,
    )


def _error_details(error: GatewayError) -> dict:
    if isinstance(error, OrderOutcomeUnknown):
        return {"message": error.message}  # sent, no answer: there is no venue code
    return {"code": error.code, "message": error.message}


REDUCE_JOURNAL = OrderJournal(write=_journal_write, error_details=_error_details)


def _position_reduce(
    *, gateway: BybitGateway, position: Position, fraction: Decimal, run_key: str, now: datetime
) -> tuple[str, bool, str]:
    """Cut one position by ``fraction``; returns (journal outcome, may have reached the venue, alert line)."""
    symbol = position.symbol
    link_id = order_link_id(
        strategy=STRATEGY, symbol=symbol, decision_key=f"{run_key}:{position.side.value}", leg="reduce"
    )
    details = {
        "run_key": run_key,
        "side": side_word(position),
        "size": decimal_text(position.size),
        "fraction": decimal_text(fraction),
    }

    def place() -> OrderAck:
        instrument = gateway.instrument(symbol)
        qty = rules.reduce_qty(
            size=position.size,
            fraction=fraction,
            qty_step=instrument.qty_step,
            min_order_qty=instrument.min_order_qty,
        )
        details["qty"] = decimal_text(qty)
        details["whole_position"] = qty == position.size
        if qty == position.size:
            return gateway.close_position(position=position, order_link_id=link_id)
        return gateway.place_order(
            symbol=symbol, side=position.side.opposite, qty=qty, order_link_id=link_id, reduce_only=True
        )

    outcome = order_send(
        journal=REDUCE_JOURNAL,
        action="reduce",
        symbol=symbol,
        order_link_id=link_id,
        place=place,
        details=details,
        now=now,
        taken_reason="im_reduce",
    )
    if outcome.status is OrderStatus.UNKNOWN:
        return FAILED, True, f"{symbol}: outcome unknown ({link_id})"
    if outcome.status is OrderStatus.REFUSED:
        error = outcome.error
        logger.warning(
            "im_reduce_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__
        )
        return FAILED, False, f"{symbol}: failed ({type(error).__name__})"
    return TAKEN, True, f"{symbol} {side_word(position)}: -{details['qty']} of {position.size}"
