"""The risk manager's TP/SL upkeep step: every open position on a configured coin, not held by
the portfolio strategy, carries the TP and SL its coin asks for (``tpsl_upkeep_step``, every 10 s).

A failure that repeats every pass is journaled at most every ``FAILURE_JOURNAL_INTERVAL_S``
(``risk.common``), interval kept in Redis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from core.alerts import alert_send
from risk import rules
from risk.common import (
    FAILED,
    STRATEGY,
    TAKEN,
    decimal_text,
    failure_clear,
    failure_journal_due,
    side_word,
)
from risk.models import RiskSettings, UnknownPositions
from risk.reconcile import position_is_unknown
from trading.alerting import gateway_error_alert
from trading.bybit import BybitGateway, Position
from trading.errors import GatewayError
from trading.models import Coin
from trading.rules.order_link_id import order_link_id
from trading.selectors import pm_symbols
from trading.services import decision_record

logger = logging.getLogger(__name__)


@dataclass
class TpslUpkeepResult:
    """Symbols by what one pass did to their position."""

    set: list[str] = field(default_factory=list)  # TP/SL set or corrected
    closed: list[str] = field(default_factory=list)  # a level was already passed: closed
    unchanged: list[str] = field(default_factory=list)  # already right
    skipped_pm: list[str] = field(default_factory=list)  # portfolio strategy's: left alone
    skipped_unconfigured: list[str] = field(default_factory=list)  # no Coin row: left alone
    skipped_unknown: list[str] = field(default_factory=list)  # nobody's, unknown_positions=report
    failed: list[str] = field(default_factory=list)

    @property
    def found_work(self) -> bool:
        return bool(self.set or self.closed or self.failed)

    def summary(self) -> dict:
        return {name: list(getattr(self, name)) for name in self.__dataclass_fields__}


def tpsl_upkeep_step(*, gateway: BybitGateway, now: datetime) -> TpslUpkeepResult:
    """Make sure every open position on a configured coin, not held by the portfolio
    strategy, carries the TP and SL its coin asks for.

    TP/SL are attached with ``trading-stop`` in ``tpslMode=Full``: Bybit keeps the
    conditional closes sized to the whole position as it grows or shrinks, so they
    can never be larger than the position (no 110017 from us). Prices come from the
    position's average entry price and the coin's TP/SL %, rounded toward the market
    (``risk.rules.tpsl_prices``); a leg within one tick of that is left as it is.
    Coins that are disabled for new entries still get their open positions protected.
    A position nobody of ours opened is left alone when ``unknown_positions`` is
    ``report`` (``risk.reconcile``).

    A level the market has already passed cannot be set (Bybit refuses it); the
    position is then closed reduce-only, as that TP/SL would have closed it.

    Blocking. A failure to read positions raises (the task retries); a failure on one
    position is journaled and the others are still handled.
    """
    coins = {coin.symbol: coin for coin in Coin.objects.all()}
    managed_by_pm = pm_symbols()
    hands_off_unknown = RiskSettings.load().unknown_positions == UnknownPositions.REPORT
    result = TpslUpkeepResult()
    for position in gateway.positions():
        if position.symbol in managed_by_pm:
            result.skipped_pm.append(position.symbol)
            continue
        coin = coins.get(position.symbol)
        if coin is None:
            result.skipped_unconfigured.append(position.symbol)
            continue
        if hands_off_unknown and position_is_unknown(position, pm=managed_by_pm, now=now):
            result.skipped_unknown.append(position.symbol)
            continue
        _tpsl_keep(gateway=gateway, position=position, coin=coin, now=now, result=result)
    return result


def _tpsl_keep(
    *, gateway: BybitGateway, position: Position, coin: Coin, now: datetime, result: TpslUpkeepResult
) -> None:
    symbol = position.symbol
    failure_what = f"tpsl:{symbol}:{position.side.value}"
    try:
        tick_size = gateway.instrument(symbol).tick_size
    except GatewayError as error:
        _tpsl_failed(position=position, error=error, details={}, now=now, result=result, what=failure_what)
        return
    wanted = rules.tpsl_prices(
        position_side=position.side,
        avg_price=position.avg_price,
        take_profit_pct=coin.take_profit_pct,
        stop_loss_pct=coin.stop_loss_pct,
        tick_size=tick_size,
    )
    if not rules.tpsl_needs_setting(
        take_profit=position.take_profit, stop_loss=position.stop_loss, wanted=wanted, tick_size=tick_size
    ):
        result.unchanged.append(symbol)
        return
    details = {
        "side": side_word(position),
        "size": decimal_text(position.size),
        "avg_price": decimal_text(position.avg_price),
        "mark_price": decimal_text(position.mark_price),
        "take_profit_pct": decimal_text(coin.take_profit_pct),
        "stop_loss_pct": decimal_text(coin.stop_loss_pct),
        "take_profit_before": decimal_text(position.take_profit),
        "stop_loss_before": decimal_text(position.stop_loss),
        "take_profit": decimal_text(wanted.take_profit),
        "stop_loss": decimal_text(wanted.stop_loss),
        "tick_size": decimal_text(tick_size),
    }
    crossed = None
    if position.mark_price is not None:
        crossed = rules.tpsl_crossed(
            position_side=position.side, wanted=wanted, last_price=position.mark_price
        )
    if crossed is not None:
        _position_close_crossed(
            gateway=gateway, position=position, crossed=crossed, details=details, now=now, result=result
        )
        return
    try:
        changed = gateway.set_trading_stop(
            symbol=symbol,
            position_side=position.side,
            take_profit=wanted.take_profit,
            stop_loss=wanted.stop_loss,
        )
    except GatewayError as error:
        _tpsl_failed(
            position=position, error=error, details=details, now=now, result=result, what=failure_what
        )
        return
    failure_clear(failure_what)
    if not changed:  # 34040: the venue already shows exactly these prices
        result.unchanged.append(symbol)
        return
    decision_record(
        strategy=STRATEGY,
        symbol=symbol,
        action="set_tpsl",
        outcome=TAKEN,
        reason_code="missing" if position.take_profit is None or position.stop_loss is None else "corrected",
        details=details,
        at=now,
    )
    logger.info(
        "tpsl_set symbol=%s side=%s size=%s avg_price=%s take_profit=%s stop_loss=%s",
        symbol,
        position.side.value,
        position.size,
        position.avg_price,
        wanted.take_profit,
        wanted.stop_loss,
    )
    result.set.append(symbol)


def _tpsl_failed(
    *,
    position: Position,
    error: GatewayError,
    details: dict,
    now: datetime,
    result: TpslUpkeepResult,
    what: str,
) -> None:
    result.failed.append(position.symbol)
    logger.warning(
        "tpsl_failed symbol=%s side=%s code=%s error=%s",
        position.symbol,
        position.side.value,
        error.code,
        type(error).__name__,
    )
    if failure_journal_due(what):
        decision_record(
            strategy=STRATEGY,
            symbol=position.symbol,
            action="set_tpsl",
            outcome=FAILED,
            reason_code=type(error).__name__,
            details={**details, "code": error.code, "message": error.message},
            at=now,
        )


def _position_close_crossed(
    *,
    gateway: BybitGateway,
    position: Position,
    crossed: str,
    details: dict,
    now: datetime,
    result: TpslUpkeepResult,
) -> None:
    """Close a position whose TP or SL level the market already passed, reduce-only.

    The orderLinkId comes from the position as read (side, size, average price, last
    update), so a retry of the same close reuses it; a reduce-only close can never
    grow or flip the position even if a copy landed.
    """
    updated_ms = int(position.updated_at.timestamp() * 1000) if position.updated_at else 0
    decision_key = f"tpsl-{crossed}:{position.side.value}:{position.size}:{position.avg_price}:{updated_ms}"
    link_id = order_link_id(strategy=STRATEGY, symbol=position.symbol, decision_key=decision_key, leg="close")
    reason_code = f"{crossed}_crossed"
    try:
        gateway.close_position(position=position, order_link_id=link_id)
    except GatewayError as error:
        gateway_error_alert(error, order="TP/SL close", symbol=position.symbol)
        what = f"tpsl-close:{position.symbol}:{position.side.value}"
        _tpsl_failed(position=position, error=error, details=details, now=now, result=result, what=what)
        return
    decision_record(
        strategy=STRATEGY,
        symbol=position.symbol,
        action="close",
        outcome=TAKEN,
        reason_code=reason_code,
        details=details,
        order_link_id=link_id,
        at=now,
    )
    logger.warning(
        "tpsl_level_crossed_closed symbol=%s side=%s level=%s mark_price=%s order_link_id=%s",
        position.symbol,
        position.side.value,
        crossed,
        position.mark_price,
        link_id,
    )
    level = details["stop_loss"] if crossed == "stop_loss" else details["take_profit"]
    alert_send(
        f"{position.symbol} {side_word(position)} {position.size} had no valid "
        f"{'stop-loss' if crossed == 'stop_loss' else 'take-profit'} and the price "
        f"({position.mark_price}) is already past its level {level}: closed reduce-only.",
        kind="tpsl_close",
    )
    result.closed.append(position.symbol)
