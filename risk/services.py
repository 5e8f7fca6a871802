"""The profit & risk manager's actions: TP/SL upkeep, the daily control, the IM% watch.

Each ``*_step(*, gateway, now)`` does one blocking pass and returns what it did; the
Celery tasks in ``risk.tasks`` call them on a beat, tests call them directly.
Exchange calls are never made inside a transaction: a slow venue must not hold a
database lock (SQLite has one writer), and a rolled-back transaction cannot take
back an order anyway.

Shared state between workers lives where every worker sees it:
- the database: the day's row (``DailyPnL``), claimed with a conditional UPDATE of
  its ``outcome`` so only one worker flattens for a day's limit; the trading switch;
  the journal (``Decision``, strategy ``risk``);
- Redis, with TTLs: the IM warn-alert interval, the IM reduce cooldown (claimed with
  SET NX EX so only one worker reduces), a pending daily flatten to retry, and the
  interval between repeated failure entries in the journal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TextIO

from django.db import transaction

from core import keys
from core.alerts import alert_send
from core.models import TradingState
from core.redis_client import redis_client
from risk import rules
from risk.models import DailyPnL, RiskSettings
from risk.rules import DayOutcome, ImAction
from trading.bybit import BybitGateway, Position
from trading.errors import GatewayError, OrderOutcomeUnknown
from trading.flatten import FlattenReport, positions_flatten
from trading.models import Coin, Decision
from trading.rules.order_link_id import order_link_id
from trading.selectors import pm_symbols
from trading.services import decision_record, trading_disable_until, trading_state_publish

logger = logging.getLogger(__name__)

STRATEGY = Decision.Strategy.RISK  # also the orderLinkId prefix of every order placed here
TAKEN = Decision.Outcome.TAKEN
SKIPPED = Decision.Outcome.SKIPPED
FAILED = Decision.Outcome.FAILED

# TradingState.disabled_reason of a daily-limit disable starts with this; the new-day
# re-enable clears only a disable that carries it (never a panic lock or a halt,
# which are separate switches, nor a disable someone else set).
DAILY_REASON_PREFIX = "daily control: "


# A failure that repeats on every pass (a venue refusing the same TP/SL every 10 s)
# is journaled at most this often; every occurrence is still logged.
FAILURE_JOURNAL_INTERVAL_S = 300
# A daily flatten that did not leave the account flat is retried, at most this often.
DAILY_FLATTEN_RETRY_INTERVAL_S = 30
# Pause between the rounds of a daily flatten (positions_flatten waits this x the round number).
FLATTEN_PAUSE_S = 0.5
# How long Redis remembers a pending daily flatten (past the day's end is enough).
DAILY_FLATTEN_PENDING_TTL_S = 2 * 86400

# After an IM reduction that placed no order at all, the next try comes this much sooner.
IM_REDUCE_FAILED_RETRY_S = 30

# Re-time a key only if it still holds our value: a cooldown another run now owns is kept.
_EXPIRE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""


def _text(value: Decimal | None) -> str | None:
    """Decimals go into the journal's JSON as strings (exact, and JSON has no Decimal)."""
    return None if value is None else str(value)


def _pct(value: Decimal) -> str:
    """A percentage for people: "10", "2.5", "-5.0123" (no exponent, no trailing zeros)."""
    if not value.is_finite():
        return "infinite"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _side_word(position: Position) -> str:
    return "long" if position.is_long else "short"


def _failure_journal_due(what: str) -> bool:
    """True at most once per FAILURE_JOURNAL_INTERVAL_S for one kind of failure."""
    key = keys.RISK_FAILURE_JOURNALED.format(what=what)
    return bool(redis_client().set(key, "1", nx=True, ex=FAILURE_JOURNAL_INTERVAL_S))


def _failure_clear(what: str) -> None:
    redis_client().delete(keys.RISK_FAILURE_JOURNALED.format(what=what))


# ==================================================================================
# 1. TP/SL upkeep
# ==================================================================================


@dataclass
class TpslUpkeepResult:
    """Symbols by what one pass did to their position."""

    set: list[str] = field(default_factory=list)  # TP/SL set or corrected
    closed: list[str] = field(default_factory=list)  # a level was already passed: closed
    unchanged: list[str] = field(default_factory=list)  # already right
    skipped_pm: list[str] = field(default_factory=list)  # portfolio strategy's: left alone
    skipped_unconfigured: list[str] = field(default_factory=list)  # no Coin row: left alone
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

    A level the market has already passed cannot be set (Bybit refuses it); the
    position is then closed reduce-only, as that TP/SL would have closed it.

    Blocking. A failure to read positions raises (the task retries); a failure on one
    position is journaled and the others are still handled.
    """
    coins = {coin.symbol: coin for coin in Coin.objects.all()}
    managed_by_pm = pm_symbols()
    result = TpslUpkeepResult()
    for position in gateway.positions():
        if position.symbol in managed_by_pm:
            result.skipped_pm.append(position.symbol)
            continue
        coin = coins.get(position.symbol)
        if coin is None:
            result.skipped_unconfigured.append(position.symbol)
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
        "side": _side_word(position),
        "size": _text(position.size),
        "avg_price": _text(position.avg_price),
        "mark_price": _text(position.mark_price),
        "take_profit_pct": _text(coin.take_profit_pct),
        "stop_loss_pct": _text(coin.stop_loss_pct),
        "take_profit_before": _text(position.take_profit),
        "stop_loss_before": _text(position.stop_loss),
        "take_profit": _text(wanted.take_profit),
        "stop_loss": _text(wanted.stop_loss),
        "tick_size": _text(tick_size),
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
    _failure_clear(failure_what)
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
    if _failure_journal_due(what):
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
        f"{position.symbol} {_side_word(position)} {position.size} had no valid "
        f"{'stop-loss' if crossed == 'stop_loss' else 'take-profit'} and the price "
        f"({position.mark_price}) is already past its level {level}: closed reduce-only.",
        kind="tpsl_close",
    )
    result.closed.append(position.symbol)


# ==================================================================================
# 2. Daily control
# ==================================================================================


@dataclass
class DailyControlResult:
    date: date
    baseline_created: bool = False
    baseline_source: str = ""  # "exchange", "fallback" (RiskSettings.equity_usdt) or "rebased"
    equity: Decimal | None = None  # None: the exchange could not be read this pass
    pnl_pct: Decimal | None = None
    outcome: str = DayOutcome.OPEN.value
    acted: bool = False  # this pass claimed a limit: disabled trading and flattened
    flatten: FlattenReport | None = None
    reenabled: bool = False  # this pass lifted yesterday's daily-limit disable

    @property
    def found_work(self) -> bool:
        return self.baseline_created or self.acted or self.reenabled or self.flatten is not None

    def summary(self) -> dict:
        return {
            "date": self.date.isoformat(),
            "baseline_created": self.baseline_created,
            "baseline_source": self.baseline_source,
            "equity": _text(self.equity),
            "pnl_pct": _text(self.pnl_pct),
            "outcome": self.outcome,
            "acted": self.acted,
            "flat": None if self.flatten is None else self.flatten.flat,
            "reenabled": self.reenabled,
        }


def daily_control_step(*, gateway: BybitGateway, now: datetime) -> DailyControlResult:
    """One pass of the daily control for ``now``'s UTC day.

    - Lifts a daily-limit disable whose time has come (the new day), and only that.
    - The day's first pass creates its ``DailyPnL`` row with the wallet equity as
      the baseline. When the exchange cannot be read, the baseline is
      ``RiskSettings.equity_usdt`` and the journal says so; the first equity read of
      the day then replaces that stand-in (journaled), so a stale setting can never
      make a limit look reached.
    - Every pass records last/high/low equity and the day's PnL.
    - When PnL reaches +target % or -stop % on a still-open day, the pass that wins
      the conditional UPDATE of the outcome disables trading until the next 00:00
      UTC (first, so nothing opens during the flatten), flattens every position
      reduce-only (portfolio positions too), journals and alerts. A flatten that does
      not end flat is retried on later passes.
    """
    today = rules.utc_date(now)
    result = DailyControlResult(date=today)
    result.reenabled = _daily_disable_lift(now=now)
    risk = RiskSettings.load()
    equity, read_error = _equity_read(gateway)
    result.equity = equity
    day = _day_row(today=today, equity=equity, read_error=read_error, risk=risk, now=now, result=result)
    if equity is None:
        result.outcome = day.outcome
        return result
    if not result.baseline_created and _baseline_is_stand_in(now=now):
        day = _baseline_rebase(day=day, equity=equity, now=now, result=result)
    figures = rules.daily_pnl(baseline=day.baseline_equity, equity=equity)
    result.pnl_pct = figures.pnl_pct
    _day_figures_store(day=day, equity=equity, figures=figures, now=now)
    if day.outcome != DayOutcome.OPEN:
        result.outcome = day.outcome
        result.flatten = _daily_flatten_retry(gateway=gateway, today=today, now=now)
        return result
    outcome = rules.day_outcome(
        pnl_pct=figures.pnl_pct, target_pct=risk.daily_target_pct, stop_pct=risk.daily_stop_pct
    )
    result.outcome = outcome.value
    if outcome is DayOutcome.OPEN:
        return result
    # Claim the day's limit: of several workers seeing it, exactly one acts.
    claimed = DailyPnL.objects.filter(pk=day.pk, outcome=DayOutcome.OPEN).update(outcome=outcome.value)
    if claimed != 1:
        logger.info("daily_limit_already_claimed date=%s", today)
        return result
    result.acted = True
    result.flatten = _daily_limit_act(
        gateway=gateway, today=today, outcome=outcome, figures=figures, day=day, risk=risk, now=now
    )
    return result


def _day_figures_store(*, day: DailyPnL, equity: Decimal, figures: rules.DailyFigures, now: datetime) -> None:
    """Last equity and PnL, and the day's high and low, as conditional UPDATEs (no read-modify-write
    race between workers: a high only ever rises, a low only ever falls)."""
    rows = DailyPnL.objects.filter(pk=day.pk)
    with transaction.atomic():
        rows.update(last_equity=equity, pnl_usdt=figures.pnl_usdt, pnl_pct=figures.pnl_pct, updated_at=now)
        rows.filter(high_equity__lt=equity).update(high_equity=equity)
        rows.filter(low_equity__gt=equity).update(low_equity=equity)


def _equity_read(gateway: BybitGateway) -> tuple[Decimal | None, GatewayError | None]:
    try:
        return rules.money(gateway.wallet().total_equity), None
    except GatewayError as error:
        logger.warning("daily_equity_unreadable code=%s error=%s", error.code, type(error).__name__)
        return None, error


def _day_row(
    *,
    today: date,
    equity: Decimal | None,
    read_error: GatewayError | None,
    risk: RiskSettings,
    now: datetime,
    result: DailyControlResult,
) -> DailyPnL:
    day = DailyPnL.objects.filter(date=today).first()
    if day is not None:
        return day
    baseline = equity if equity is not None else rules.money(risk.equity_usdt)
    source = "exchange" if equity is not None else "fallback"
    details = {"date": today.isoformat(), "baseline_equity": _text(baseline), "source": source}
    if read_error is not None:
        details.update(
            {
                "note": "exchange unreadable: RiskSettings.equity_usdt stands in until the first read",
                "code": read_error.code,
                "error": type(read_error).__name__,
            }
        )
    # The row and its journal entry together: the entry is how a later pass knows a
    # baseline is only the stand-in (see _baseline_is_stand_in).
    with transaction.atomic():
        day, created = DailyPnL.objects.get_or_create(
            date=today,
            defaults={
                "baseline_equity": baseline,
                "last_equity": baseline,
                "high_equity": baseline,
                "low_equity": baseline,
                "pnl_usdt": Decimal("0"),
                "pnl_pct": Decimal("0"),
                "outcome": DayOutcome.OPEN.value,
            },
        )
        if created:
            decision_record(
                strategy=STRATEGY,
                action="daily_baseline",
                outcome=TAKEN,
                reason_code=source,
                details=details,
                at=now,
            )
    if not created:  # another worker created it between our read and our insert
        return day
    result.baseline_created = True
    result.baseline_source = source
    logger.info("daily_baseline date=%s baseline_equity=%s source=%s", today, baseline, source)
    return day


def _baseline_is_stand_in(*, now: datetime) -> bool:
    """Whether today's baseline is still the settings' stand-in: the journal's latest word on it says so."""
    latest = (
        Decision.objects.filter(
            strategy=STRATEGY,
            action="daily_baseline",
            created_at__gte=rules.day_start(now),
            created_at__lt=rules.next_utc_midnight(now),
        )
        .order_by("-created_at", "-id")
        .values_list("reason_code", flat=True)
        .first()
    )
    return latest == "fallback"


def _baseline_rebase(
    *, day: DailyPnL, equity: Decimal, now: datetime, result: DailyControlResult
) -> DailyPnL:
    """Replace a stand-in baseline by the first equity the exchange reported today."""
    with transaction.atomic():
        replaced = DailyPnL.objects.filter(
            pk=day.pk, baseline_equity=day.baseline_equity, outcome=DayOutcome.OPEN
        ).update(
            baseline_equity=equity,
            last_equity=equity,
            high_equity=equity,
            low_equity=equity,
            pnl_usdt=Decimal("0"),
            pnl_pct=Decimal("0"),
            updated_at=now,
        )
        if replaced == 1:
            decision_record(
                strategy=STRATEGY,
                action="daily_baseline",
                outcome=TAKEN,
                reason_code="rebased",
                details={
                    "date": day.date.isoformat(),
                    "baseline_equity": _text(equity),
                    "replaced": _text(day.baseline_equity),
                    "source": "exchange",
                    "note": "first equity read of the day replaces the RiskSettings.equity_usdt stand-in",
                },
                at=now,
            )
    if replaced == 1:
        result.baseline_source = "rebased"
        logger.info("daily_baseline_rebased date=%s baseline_equity=%s", day.date, equity)
    day.refresh_from_db()
    return day


def _daily_limit_act(
    *,
    gateway: BybitGateway,
    today: date,
    outcome: DayOutcome,
    figures: rules.DailyFigures,
    day: DailyPnL,
    risk: RiskSettings,
    now: datetime,
) -> FlattenReport:
    is_target = outcome is DayOutcome.TARGET_HIT
    label = "target" if is_target else "stop"
    limit = risk.daily_target_pct if is_target else -risk.daily_stop_pct
    until = rules.next_utc_midnight(now)
    reason = f"{DAILY_REASON_PREFIX}daily {label} hit ({_pct(figures.pnl_pct)} % on {today.isoformat()})"
    # Off first: no strategy may open while the account is being flattened.
    trading_disable_until(until=until, reason=reason)
    # Marked pending before the flatten, cleared once flat: if this worker dies midway,
    # a later pass (any worker) flattens again after the retry interval.
    client = redis_client()
    pending_key = keys.RISK_DAILY_FLATTEN_PENDING.format(date=today.isoformat())
    client.set(pending_key, "1", ex=DAILY_FLATTEN_PENDING_TTL_S)
    client.set(
        keys.RISK_DAILY_FLATTEN_RETRY.format(date=today.isoformat()), "1", ex=DAILY_FLATTEN_RETRY_INTERVAL_S
    )
    report = positions_flatten(
        gateway=gateway,
        strategy=STRATEGY,
        run_key=f"daily-{today.isoformat()}",
        pause_s=FLATTEN_PAUSE_S,
    )
    if report.flat:
        client.delete(pending_key)
    decision_record(
        strategy=STRATEGY,
        action=f"daily_{label}",
        outcome=TAKEN if report.flat else FAILED,
        reason_code=outcome.value,
        details={
            "date": today.isoformat(),
            "baseline_equity": _text(day.baseline_equity),
            "pnl_usdt": _text(figures.pnl_usdt),
            "pnl_pct": _text(figures.pnl_pct),
            "limit_pct": _text(limit),
            "disabled_until": until.isoformat(),
            "flat": report.flat,
            "closes_sent": report.closes_sent,
            "remaining_positions": report.remaining_positions,
            "errors": report.errors,
        },
        at=now,
    )
    logger.warning(
        "daily_limit_hit date=%s outcome=%s pnl_pct=%s flat=%s disabled_until=%s",
        today,
        outcome.value,
        figures.pnl_pct,
        report.flat,
        until.isoformat(),
    )
    flat_text = (
        "All positions closed."
        if report.flat
        else f"NOT FLAT yet: {', '.join(report.remaining_positions) or 'unverified'}; retrying."
    )
    alert_send(
        f"Daily {label} hit: {_pct(figures.pnl_pct)} % ({figures.pnl_usdt} USDT, limit {_pct(limit)} %). "
        f"{flat_text} Trading off until {until:%Y-%m-%d %H:%M} UTC.",
        kind="daily_limit",
    )
    return report


def _daily_flatten_retry(*, gateway: BybitGateway, today: date, now: datetime) -> FlattenReport | None:
    """Flatten again after a daily limit whose flatten did not end flat (at most every 30 s)."""
    client = redis_client()
    pending_key = keys.RISK_DAILY_FLATTEN_PENDING.format(date=today.isoformat())
    if not client.exists(pending_key):
        return None
    retry_key = keys.RISK_DAILY_FLATTEN_RETRY.format(date=today.isoformat())
    if not client.set(retry_key, "1", nx=True, ex=DAILY_FLATTEN_RETRY_INTERVAL_S):
        return None
    # A fresh run key per retry: reusing one would reuse its orderLinkIds, and the
    # venue would answer a new close with the old, filled one.
    attempt_key = keys.RISK_DAILY_FLATTEN_ATTEMPT.format(date=today.isoformat())
    attempt = client.incr(attempt_key)
    client.expire(attempt_key, DAILY_FLATTEN_PENDING_TTL_S)
    report = positions_flatten(
        gateway=gateway,
        strategy=STRATEGY,
        run_key=f"daily-{today.isoformat()}-r{attempt}",
        pause_s=FLATTEN_PAUSE_S,
    )
    if report.flat:
        client.delete(pending_key)
        alert_send(
            f"Daily limit flatten completed on retry {attempt}: the account is flat.", kind="daily_limit"
        )
    logger.warning("daily_flatten_retry date=%s attempt=%d flat=%s", today, attempt, report.flat)
    return report


def _daily_disable_lift(*, now: datetime) -> bool:
    """Lift a daily-limit disable whose end has passed; any other disable, a panic or a halt stays.

    A conditional UPDATE, so a disable set a moment ago by today's own limit (ending
    at the next midnight) can never be cleared by a worker that read the old one.
    """
    expired = TradingState.objects.filter(
        pk=1, disabled_reason__startswith=DAILY_REASON_PREFIX, disabled_until__lte=now
    )
    if not expired.exists():  # the usual case: a read, not a write transaction every 5 s
        return False
    with transaction.atomic():
        lifted = expired.update(disabled_until=None, disabled_reason="", updated_at=now)
        if lifted:
            trading_state_publish()
    if not lifted:
        return False
    decision_record(
        strategy=STRATEGY,
        action="trading_enable",
        outcome=TAKEN,
        reason_code="new_day",
        details={"date": rules.utc_date(now).isoformat()},
        at=now,
    )
    logger.info("daily_disable_lifted date=%s", rules.utc_date(now))
    alert_send(
        f"New UTC day {rules.utc_date(now).isoformat()}: the daily-limit stop is lifted, trading re-enabled.",
        kind="daily_rollover",
    )
    return True


# ==================================================================================
# 3. IM% watch
# ==================================================================================


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
            "im_pct": _text(self.im_pct),
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
            "im_warn_pct": _text(risk.im_warn_pct),
            "im_reduce_pct": _text(risk.im_reduce_pct),
        },
        at=now,
    )
    logger.warning("im_warn im_pct=%s warn_pct=%s", _im_pct_text(im_pct), risk.im_warn_pct)
    if above_reduce:
        text = (
            f"IM {_im_pct_text(im_pct)} % is above the reduce level {_pct(risk.im_reduce_pct)} %; "
            f"the next reduction waits for its cooldown."
        )
    else:
        text = (
            f"IM {_im_pct_text(im_pct)} % is above the warn level {_pct(risk.im_warn_pct)} % "
            f"(reduce at {_pct(risk.im_reduce_pct)} %). New liquidation entries are blocked."
        )
    alert_send(text, kind="im_warn")


def _im_reduce(
    *, gateway: BybitGateway, risk: RiskSettings, im_pct: Decimal, now: datetime, result: ImWatchResult
) -> None:
    client = redis_client()
    if client.exists(keys.RISK_IM_REDUCE):  # cooling down: no need to read the positions
        result.cooldown = True
        return
    managed_by_pm = pm_symbols()
    positions = [p for p in gateway.positions() if p.symbol not in managed_by_pm]
    run_key = f"im-{now:%Y%m%dT%H%M%S}"
    # Claimed only after the positions were read: a failed read must not hold the cooldown.
    if not client.set(keys.RISK_IM_REDUCE, run_key, nx=True, ex=risk.reduce_cooldown_seconds):
        result.cooldown = True
        return
    result.run_key = run_key
    if not positions:
        decision_record(
            strategy=STRATEGY,
            action="reduce",
            outcome=SKIPPED,
            reason_code="no_reducible_positions",
            details={"run_key": run_key, "im_pct": _im_pct_text(im_pct), "pm_symbols": sorted(managed_by_pm)},
            at=now,
        )
        alert_send(
            f"IM {_im_pct_text(im_pct)} % is above the reduce level {_pct(risk.im_reduce_pct)} %, but every "
            f"open position belongs to the portfolio strategy: nothing reduced.",
            kind="im_reduce",
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
        f"IM {_im_pct_text(im_pct)} % >= {_pct(risk.im_reduce_pct)} %: reducing exposure by "
        f"{_pct(risk.reduce_fraction * 100)} %.\n" + "\n".join(lines),
        kind="im_reduce",
    )


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
        "side": _side_word(position),
        "size": _text(position.size),
        "fraction": _text(fraction),
    }
    try:
        instrument = gateway.instrument(symbol)
        qty = rules.reduce_qty(
            size=position.size,
            fraction=fraction,
            qty_step=instrument.qty_step,
            min_order_qty=instrument.min_order_qty,
        )
        details["qty"] = _text(qty)
        details["whole_position"] = qty == position.size
        if qty == position.size:
            gateway.close_position(position=position, order_link_id=link_id)
        else:
            gateway.place_order(
                symbol=symbol, side=position.side.opposite, qty=qty, order_link_id=link_id, reduce_only=True
            )
    except OrderOutcomeUnknown as error:
        details.update({"message": error.message})
        decision_record(
            strategy=STRATEGY,
            symbol=symbol,
            action="reduce",
            outcome=FAILED,
            reason_code="outcome_unknown",
            details=details,
            order_link_id=link_id,
            at=now,
        )
        return FAILED, True, f"{symbol}: outcome unknown ({link_id})"
    except GatewayError as error:
        details.update({"code": error.code, "message": error.message})
        decision_record(
            strategy=STRATEGY,
            symbol=symbol,
            action="reduce",
            outcome=FAILED,
            reason_code=type(error).__name__,
            details=details,
            order_link_id=link_id,
            at=now,
        )
        logger.warning(
            "im_reduce_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__
        )
        return FAILED, False, f"{symbol}: failed ({type(error).__name__})"
    decision_record(
        strategy=STRATEGY,
        symbol=symbol,
        action="reduce",
        outcome=TAKEN,
        reason_code="im_reduce",
        details=details,
        order_link_id=link_id,
        at=now,
    )
    return TAKEN, True, f"{symbol} {_side_word(position)}: -{details['qty']} of {position.size}"


# ==================================================================================
# The PnL log
# ==================================================================================

# The columns of the old pnl_log.csv, in its order (the admin's export writes the same).
PNL_LOG_COLUMNS = (
    "date",
    "baseline_equity",
    "last_equity",
    "pnl_usdt",
    "pnl_pct",
    "high_equity",
    "low_equity",
    "outcome",
)


def pnl_log_write(*, out: TextIO, since: date | None = None, until: date | None = None, rows=None) -> int:
    """Write DailyPnL rows, oldest first, as pnl_log.csv to ``out``; returns the number of days.

    ``since``/``until`` bound the UTC dates, both inclusive; ``rows`` (a queryset, e.g.
    the admin's selection) limits it further. Money keeps the record's four decimals,
    written exactly as stored.
    """
    import csv

    rows = (DailyPnL.objects.all() if rows is None else rows).order_by("date")
    if since is not None:
        rows = rows.filter(date__gte=since)
    if until is not None:
        rows = rows.filter(date__lte=until)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PNL_LOG_COLUMNS)
    count = 0
    for day in rows.iterator():
        writer.writerow([getattr(day, column) for column in PNL_LOG_COLUMNS])
        count += 1
    return count
