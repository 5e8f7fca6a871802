"""The risk manager's daily control step (``daily_control_step``, every 5 s): the day's PnL
record against its baseline, the daily target and stop, the flatten and its retry, and the
next UTC day's re-enable. Deposits, withdrawals and transfers are no PnL: the day's net
transfers (``risk.daily_transfers``, from Bybit's transaction log) are taken out of it.

A day's row belongs to one account: the gateway's mode and the key's Bybit UID
(``BybitGateway.account_id``). A change of account mid-day (``sim`` to ``demo``, or another
key) starts the new account's own baseline, journaled as ``account_changed``, instead of
judging the new equity against the old account's baseline (which fired the daily stop or
target at once and disabled trading for the day); the old account's row stays as history.

Shared state between workers lives where every worker sees it, in the database: the day's
row (``DailyPnL``), claimed with a conditional UPDATE of its ``outcome`` so only one worker
flattens for a day's limit, and the trading switch. The flatten's own record is on the row
too (``flatten_attempts``, ``flatten_attempted_at``, ``flat_verified_at``): a decided day
not verified flat is flattened again by whichever worker claims the retry, so a Redis flush,
or a worker on another Redis, still retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from core.alerts import alert_send
from core.models import TradingState
from risk import rules
from risk.common import FAILED, STRATEGY, TAKEN, decimal_text, pct_text
from risk.daily_transfers import day_transfers, wall_ms
from risk.models import DailyPnL, RiskSettings
from risk.pnl_log import pnl_log_changes
from risk.rules import DayOutcome
from trading.bybit import BybitGateway, Wallet
from trading.errors import GatewayError
from trading.flatten import FlattenReport, positions_flatten
from trading.services import decision_record, trading_disable_until, trading_state_publish

logger = logging.getLogger(__name__)

# TradingState.disabled_reason of a daily-limit disable starts with this; the new-day
# re-enable clears only a disable that carries it (never a panic lock or a halt,
# which are separate switches, nor a disable someone else set).
DAILY_REASON_PREFIX = "daily control: "

# A daily flatten that did not leave the account flat is retried, at most this often.
DAILY_FLATTEN_RETRY_INTERVAL_S = 30
# Pause between the rounds of a daily flatten (positions_flatten waits this x the round number).
FLATTEN_PAUSE_S = 0.5


# The account of a row made while the key could not be read: "<mode>:unidentified". The
# first pass that reads the key adopts it (it only ever holds the settings' stand-in).
UNIDENTIFIED = "unidentified"
Source = DailyPnL.BaselineSource


def account_unidentified(mode: str) -> str:
    return f"{mode}:{UNIDENTIFIED}"


@dataclass
class DailyControlResult:
    date: date
    account: str = ""  # whose row this pass measured ("<mode>:<uid>", or "<mode>:unidentified")
    baseline_created: bool = False
    baseline_source: str = ""  # "exchange", "fallback" (RiskSettings.equity_usdt) or "rebased"
    account_changed: bool = False  # this pass started a new account's baseline mid-day
    equity: Decimal | None = None  # None: the exchange could not be read this pass
    net_transfers: Decimal | None = None  # in minus out since the baseline, not PnL
    transfers_read: bool = False  # this pass read the transaction log
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
            "account": self.account,
            "account_changed": self.account_changed,
            "baseline_created": self.baseline_created,
            "baseline_source": self.baseline_source,
            "equity": decimal_text(self.equity),
            "net_transfers": decimal_text(self.net_transfers),
            "pnl_pct": decimal_text(self.pnl_pct),
            "outcome": self.outcome,
            "acted": self.acted,
            "flat": None if self.flatten is None else self.flatten.flat,
            "reenabled": self.reenabled,
        }


def daily_control_step(*, gateway: BybitGateway, now: datetime) -> DailyControlResult:
    """One pass of the daily control (``_daily_control_pass``), then the changes it made to the
    day's record appended to ``PNL_LOG_CSV`` when set (``risk.pnl_log``)."""
    result = _daily_control_pass(gateway=gateway, now=now)
    pnl_log_changes(result)
    return result


def _daily_control_pass(*, gateway: BybitGateway, now: datetime) -> DailyControlResult:
    """One pass of the daily control for ``now``'s UTC day.

    - Lifts a daily-limit disable whose time has come (the new day), and only that.
    - Reads which account the gateway trades (cached per gateway) and uses that
      account's row of the day. The day's first pass of an account creates it with
      the wallet equity as the baseline; when another account already has a row
      today, that is a change of account, journaled as ``account_changed``. When the
      exchange cannot be read, the baseline is ``RiskSettings.equity_usdt`` and the
      journal says so; the first equity read of the day then replaces that stand-in
      (journaled), so a stale setting can never make a limit look reached.
    - Every pass records last/high/low equity and the day's PnL: the equity change less the
      day's net transfers (deposits and transfers in, less withdrawals and transfers out),
      read from the transaction log since its last read; a pass about to act on a limit
      reads the log again first. A failed read never stops the pass: it goes on with the
      transfers known so far.
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
    account, read_error = _account_read(gateway)
    wallet = equity = None
    if account is not None:
        wallet, read_error = _wallet_read(gateway)
    # When the equity was read: the transfers up to this moment are in it.
    equity_ms = wall_ms()
    if wallet is not None:
        equity = rules.money(wallet.total_equity)
    result.equity = equity
    day = _day_row(
        today=today,
        account=account,
        mode=str(gateway.mode),
        equity=equity,
        equity_ms=equity_ms,
        read_error=read_error,
        risk=risk,
        now=now,
        result=result,
    )
    result.account = day.account
    if equity is None:
        result.outcome = day.outcome
        return result
    if not result.baseline_created and day.baseline_source == Source.FALLBACK:
        day = _baseline_rebase(day=day, equity=equity, equity_ms=equity_ms, now=now, result=result)
    transfers = day_transfers(gateway=gateway, day=day, wallet=wallet, equity_ms=equity_ms, now=now)
    figures = rules.daily_pnl(baseline=day.baseline_equity, equity=equity, net_transfers=transfers.net)
    if day.outcome == DayOutcome.OPEN and not transfers.read and _limit_reached(figures, risk):
        # About to act on a limit with transfers read earlier: a deposit or withdrawal made
        # since then would look like PnL. Read them again, then decide.
        transfers = day_transfers(
            gateway=gateway, day=day, wallet=wallet, equity_ms=equity_ms, now=now, force=True
        )
        figures = rules.daily_pnl(baseline=day.baseline_equity, equity=equity, net_transfers=transfers.net)
    result.net_transfers, result.transfers_read = transfers.net, transfers.read
    result.pnl_pct = figures.pnl_pct
    _day_figures_store(day=day, equity=equity, figures=figures, net_transfers=transfers.net, now=now)
    if day.outcome != DayOutcome.OPEN:
        result.outcome = day.outcome
        result.flatten = _daily_flatten_retry(gateway=gateway, day=day, now=now)
        return result
    outcome = rules.day_outcome(
        pnl_pct=figures.pnl_pct, target_pct=risk.daily_target_pct, stop_pct=risk.daily_stop_pct
    )
    result.outcome = outcome.value
    if outcome is DayOutcome.OPEN:
        return result
    # Claim the day's limit: of several workers seeing it, exactly one acts.
    claimed = DailyPnL.objects.filter(pk=day.pk, outcome=DayOutcome.OPEN).update(
        outcome=outcome.value, flatten_attempts=1, flatten_attempted_at=now
    )
    if claimed != 1:
        logger.info("daily_limit_already_claimed date=%s", today)
        return result
    result.acted = True
    result.flatten = _daily_limit_act(
        gateway=gateway,
        today=today,
        outcome=outcome,
        figures=figures,
        net_transfers=transfers.net,
        day=day,
        risk=risk,
        now=now,
    )
    return result


def _limit_reached(figures: rules.DailyFigures, risk: RiskSettings) -> bool:
    outcome = rules.day_outcome(
        pnl_pct=figures.pnl_pct, target_pct=risk.daily_target_pct, stop_pct=risk.daily_stop_pct
    )
    return outcome is not DayOutcome.OPEN


def _day_figures_store(
    *, day: DailyPnL, equity: Decimal, figures: rules.DailyFigures, net_transfers: Decimal, now: datetime
) -> None:
    """Last equity, net transfers and PnL, and the day's high and low, as conditional UPDATEs (no
    read-modify-write race between workers: a high only ever rises, a low only ever falls)."""
    rows = DailyPnL.objects.filter(pk=day.pk)
    with transaction.atomic():
        rows.update(
            last_equity=equity,
            net_transfers=net_transfers,
            pnl_usdt=figures.pnl_usdt,
            pnl_pct=figures.pnl_pct,
            updated_at=now,
        )
        rows.filter(high_equity__lt=equity).update(high_equity=equity)
        rows.filter(low_equity__gt=equity).update(low_equity=equity)


def _account_read(gateway: BybitGateway) -> tuple[str | None, GatewayError | None]:
    """The gateway's account ("<mode>:<uid>"), or None when the key can't be read."""
    try:
        return gateway.account_id(), None
    except GatewayError as error:
        logger.warning("daily_account_unreadable code=%s error=%s", error.code, type(error).__name__)
        return None, error


def _wallet_read(gateway: BybitGateway) -> tuple[Wallet | None, GatewayError | None]:
    try:
        return gateway.wallet(), None
    except GatewayError as error:
        logger.warning("daily_equity_unreadable code=%s error=%s", error.code, type(error).__name__)
        return None, error


def _day_row(
    *,
    today: date,
    account: str | None,
    mode: str,
    equity: Decimal | None,
    equity_ms: int,
    read_error: GatewayError | None,
    risk: RiskSettings,
    now: datetime,
    result: DailyControlResult,
) -> DailyPnL:
    """The account's row of ``today``, created on its first pass (``account`` None: the key
    could not be read, so this mode's row touched last stands, or a stand-in row is made)."""
    rows = DailyPnL.objects.filter(date=today)
    if account is None:
        day = rows.filter(account__startswith=f"{mode}:").order_by("-updated_at", "-id").first()
        if day is not None:
            return day
        account = account_unidentified(mode)
    else:
        day = rows.filter(account=account).first() or _unidentified_adopt(
            today=today, mode=mode, account=account
        )
        if day is not None:
            return day
    previous = rows.exclude(account=account).order_by("-updated_at", "-id").first()
    baseline = equity if equity is not None else rules.money(risk.equity_usdt)
    source = Source.EXCHANGE if equity is not None else Source.FALLBACK
    details = {
        "date": today.isoformat(),
        "account": account,
        "baseline_equity": decimal_text(baseline),
        "source": source.value,
    }
    if read_error is not None:
        details.update(
            {
                "note": "exchange unreadable: RiskSettings.equity_usdt stands in until the first read",
                "code": read_error.code,
                "error": type(read_error).__name__,
            }
        )
    if previous is not None:
        # Another account measured today so far: its baseline says nothing about this one.
        details.update(
            {
                "previous_account": previous.account,
                "previous_baseline_equity": decimal_text(previous.baseline_equity),
                "previous_outcome": previous.outcome,
                "account_note": "a new account today: its own baseline; the previous account's row stays",
            }
        )
    # The row and its journal entry together.
    with transaction.atomic():
        day, created = DailyPnL.objects.get_or_create(
            date=today,
            account=account,
            defaults={
                "baseline_equity": baseline,
                "baseline_source": source.value,
                "last_equity": baseline,
                "high_equity": baseline,
                "low_equity": baseline,
                "pnl_usdt": Decimal("0"),
                "pnl_pct": Decimal("0"),
                "outcome": DayOutcome.OPEN.value,
                # Transfers after the baseline's read count; a stand-in has none yet.
                "transfers_since_ms": equity_ms if equity is not None else None,
            },
        )
        if created:
            decision_record(
                strategy=STRATEGY,
                action="daily_baseline",
                outcome=TAKEN,
                reason_code="account_changed" if previous is not None else source.value,
                details=details,
                at=now,
            )
    if not created:  # another worker created it between our read and our insert
        return day
    result.baseline_created = True
    result.baseline_source = source.value
    result.account_changed = previous is not None
    if previous is not None:
        logger.warning(
            "daily_account_changed date=%s account=%s previous=%s baseline_equity=%s source=%s",
            today,
            account,
            previous.account,
            baseline,
            source.value,
        )
    else:
        logger.info(
            "daily_baseline date=%s account=%s baseline_equity=%s source=%s",
            today,
            account,
            baseline,
            source.value,
        )
    return day


def _unidentified_adopt(*, today: date, mode: str, account: str) -> DailyPnL | None:
    """The stand-in row made while this mode's key could not be read becomes ``account``'s: it
    never measured anything (no equity is read without the account), and the first read rebases it."""
    rows = DailyPnL.objects.filter(date=today, account=account_unidentified(mode))
    try:
        with transaction.atomic():
            adopted = rows.update(account=account)
    except IntegrityError:  # another worker created the account's own row meanwhile
        return DailyPnL.objects.filter(date=today, account=account).first()
    if not adopted:
        return None
    logger.info("daily_account_identified date=%s account=%s", today, account)
    return DailyPnL.objects.filter(date=today, account=account).first()


def _baseline_rebase(
    *, day: DailyPnL, equity: Decimal, equity_ms: int, now: datetime, result: DailyControlResult
) -> DailyPnL:
    """Replace a stand-in baseline by the first equity the exchange reported today."""
    with transaction.atomic():
        replaced = DailyPnL.objects.filter(
            pk=day.pk, baseline_source=Source.FALLBACK, outcome=DayOutcome.OPEN
        ).update(
            baseline_equity=equity,
            baseline_source=Source.REBASED,
            last_equity=equity,
            high_equity=equity,
            low_equity=equity,
            pnl_usdt=Decimal("0"),
            pnl_pct=Decimal("0"),
            net_transfers=Decimal("0"),
            transfers=[],
            transfers_since_ms=equity_ms,
            transfers_read_ms=None,
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
                    "account": day.account,
                    "baseline_equity": decimal_text(equity),
                    "replaced": decimal_text(day.baseline_equity),
                    "source": "exchange",
                    "note": "first equity read of the day replaces the RiskSettings.equity_usdt stand-in",
                },
                at=now,
            )
    if replaced == 1:
        result.baseline_source = Source.REBASED.value
        logger.info(
            "daily_baseline_rebased date=%s account=%s baseline_equity=%s", day.date, day.account, equity
        )
    day.refresh_from_db()
    return day


def _daily_limit_act(
    *,
    gateway: BybitGateway,
    today: date,
    outcome: DayOutcome,
    figures: rules.DailyFigures,
    net_transfers: Decimal,
    day: DailyPnL,
    risk: RiskSettings,
    now: datetime,
) -> FlattenReport:
    is_target = outcome is DayOutcome.TARGET_HIT
    label = "target" if is_target else "stop"
    limit = risk.daily_target_pct if is_target else -risk.daily_stop_pct
    until = rules.next_utc_midnight(now)
    reason = f"{DAILY_REASON_PREFIX}daily {label} hit ({pct_text(figures.pnl_pct)} % on {today.isoformat()})"
    # Off first: no strategy may open while the account is being flattened.
    trading_disable_until(until=until, reason=reason)
    # The claim recorded this run as attempt 1 at ``now``; until flat_verified_at is set, a
    # later pass (any worker) flattens again after the retry interval, even if this one dies.
    report = positions_flatten(
        gateway=gateway,
        strategy=STRATEGY,
        run_key=f"daily-{today.isoformat()}",
        pause_s=FLATTEN_PAUSE_S,
    )
    if report.flat:
        DailyPnL.objects.filter(pk=day.pk).update(flat_verified_at=now)
    decision_record(
        strategy=STRATEGY,
        action=f"daily_{label}",
        outcome=TAKEN if report.flat else FAILED,
        reason_code=outcome.value,
        details={
            "date": today.isoformat(),
            "account": day.account,
            "baseline_equity": decimal_text(day.baseline_equity),
            "net_transfers": decimal_text(net_transfers),
            "pnl_usdt": decimal_text(figures.pnl_usdt),
            "pnl_pct": decimal_text(figures.pnl_pct),
            "limit_pct": decimal_text(limit),
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
    moved = f", net transfers {net_transfers:+} USDT not counted" if net_transfers else ""
    alert_send(
        f"Daily {label} hit: {pct_text(figures.pnl_pct)} % ({figures.pnl_usdt} USDT{moved}, "
        f"limit {pct_text(limit)} %). "
        f"{flat_text} Trading off until {until:%Y-%m-%d %H:%M} UTC.",
        kind="daily_limit",
    )
    return report


def _daily_flatten_retry(*, gateway: BybitGateway, day: DailyPnL, now: datetime) -> FlattenReport | None:
    """Flatten again after a daily limit whose flatten did not end flat (at most every 30 s),
    from the day's row: the retry is claimed with a conditional UPDATE of its attempt count and
    time, so of several workers one retries, and a Redis flush loses nothing."""
    if day.flat_verified_at is not None:
        return None  # the usual decided day: flat since the limit; no write every pass
    retry_before = now - timedelta(seconds=DAILY_FLATTEN_RETRY_INTERVAL_S)
    if day.flatten_attempted_at is not None and day.flatten_attempted_at > retry_before:
        return None
    due = DailyPnL.objects.filter(pk=day.pk, flat_verified_at__isnull=True).filter(
        Q(flatten_attempted_at__isnull=True) | Q(flatten_attempted_at__lte=retry_before)
    )
    if not due.update(flatten_attempts=F("flatten_attempts") + 1, flatten_attempted_at=now):
        return None  # another worker retries now, or the account was verified flat meanwhile
    # A fresh run key per retry: reusing one would reuse its orderLinkIds, and the venue would
    # answer a new close with the old, filled one. The count lives in the row, so it never restarts.
    attempt = DailyPnL.objects.values_list("flatten_attempts", flat=True).get(pk=day.pk) - 1
    today = day.date
    report = positions_flatten(
        gateway=gateway,
        strategy=STRATEGY,
        run_key=f"daily-{today.isoformat()}-r{attempt}",
        pause_s=FLATTEN_PAUSE_S,
    )
    if report.flat:
        DailyPnL.objects.filter(pk=day.pk).update(flat_verified_at=now)
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
