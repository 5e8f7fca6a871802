"""The day's transfers for the daily control (``risk.daily``): deposits, withdrawals and transfers,
read from Bybit's transaction log (``BybitGateway.transaction_log``), so that money moved in or
out is never taken for PnL (``risk.rules.daily_pnl``; the types and fields relied on are in
``risk.rules``, "transfers").

Kept fast and never in the way of the daily stop:
- a pass reads the log at most every ``TRANSFERS_READ_INTERVAL_S``, and only from its last
  read on (less ``TRANSFERS_LOOKBACK_S``, for rows Bybit delivers late), never the whole day;
  a pass about to fire a limit reads it again first (``force``), so a deposit made a moment
  ago cannot fire the target, nor a withdrawal the stop;
- a failed read is journaled and logged once per ``FAILURE_JOURNAL_INTERVAL_S``, and the
  pass goes on with the transfers it already knows.

The day's row keeps what was counted (``DailyPnL.transfers``, deduplicated by row id), so
another worker, or the next pass after a restart, counts nothing twice. A transfer counts
when it happened after the baseline was read (before, it is in the baseline) and at or before
the equity it is taken out of was read (after, that equity does not show it yet).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from risk import rules
from risk.common import FAILED, STRATEGY, TAKEN, decimal_text, failure_clear, failure_journal_due
from risk.models import DailyPnL
from trading.bybit import BybitGateway, TransactionLog, Wallet
from trading.bybit.parsing import ms_from_datetime
from trading.errors import GatewayError
from trading.services import decision_record

logger = logging.getLogger(__name__)

TRANSFERS_READ_INTERVAL_S = 5
# Bybit: "during periods of extreme market volatility, this interface may experience increased
# latency or temporary delays in data delivery": each read looks this far behind the last one.
TRANSFERS_LOOKBACK_S = 300
UNREADABLE = "daily_transfers_unreadable"  # the failure's name for risk.common.failure_journal_due


def wall_ms() -> int:
    """The wall clock in ms, the transaction log's time scale."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class DayTransfers:
    net: Decimal  # in minus out, USDT, counted up to the equity read
    read: bool  # this pass read the log
    error: str = ""  # why the read failed ("" when it did not)


def day_transfers(
    *,
    gateway: BybitGateway,
    day: DailyPnL,
    wallet: Wallet,
    equity_ms: int,
    now: datetime,
    force: bool = False,
) -> DayTransfers:
    """The day's net transfers as the equity read at ``equity_ms`` shows them; reads the log when
    it is due (or ``force``) and records what it found on ``day``'s row (and on ``day``)."""
    if day.transfers_since_ms is None:
        return DayTransfers(net=rules.ZERO, read=False)  # a stand-in baseline: nothing to measure yet
    due = force or day.transfers_read_ms is None
    due = due or equity_ms - day.transfers_read_ms >= TRANSFERS_READ_INTERVAL_S * 1000
    read, error = False, ""
    if due:
        error = _transfers_read(gateway=gateway, day=day, wallet=wallet, now=now)
        read = not error
    values = [(row["time_ms"], Decimal(row["usdt"])) for row in day.transfers if row.get("usdt") is not None]
    return DayTransfers(net=rules.transfers_net(values, until_ms=equity_ms), read=read, error=error)


def _transfers_read(*, gateway: BybitGateway, day: DailyPnL, wallet: Wallet, now: datetime) -> str:
    """Read the log since the last read and add the transfers not yet counted; "" or the error."""
    since = day.transfers_since_ms
    start_ms = (
        since
        if day.transfers_read_ms is None
        else max(since, day.transfers_read_ms - TRANSFERS_LOOKBACK_S * 1000)
    )
    started_ms = wall_ms()
    try:
        log = gateway.transaction_log(start=datetime.fromtimestamp(start_ms / 1000, tz=UTC))
    except GatewayError as error:
        _unreadable(day=day, error=error, now=now)
        return f"{type(error).__name__} {error.code}"
    if failure_clear(UNREADABLE):
        logger.info("daily_transfers_readable_again date=%s account=%s", day.date, day.account)
    found = _transfers_found(log=log, since_ms=since, prices=wallet.usd_prices())
    # Newest first: a read cut short at its page limit lacks the oldest rows, so the next
    # read goes on from the oldest row it did get.
    read_until = started_ms
    if log.next_cursor and log.entries and log.entries[-1].transaction_time is not None:
        read_until = ms_from_datetime(log.entries[-1].transaction_time)
        logger.warning("daily_transfers_log_truncated date=%s rows=%d", day.date, len(log.entries))
    added = _transfers_merge(day=day, found=found, read_until=read_until)
    for transfer in added:
        _transfer_journal(day=day, transfer=transfer, now=now)
    return ""


def _transfers_found(*, log: TransactionLog, since_ms: int, prices: dict[str, Decimal]) -> list[dict]:
    found = []
    for entry in log.entries:
        if not rules.is_transfer(entry.type) or entry.transaction_time is None:
            continue
        time_ms = ms_from_datetime(entry.transaction_time)
        if time_ms <= since_ms:
            continue  # already in the baseline
        amount = rules.transfer_amount(log_type=entry.type, change=entry.change, cash_flow=entry.cash_flow)
        value = rules.transfer_value(amount=amount, currency=entry.currency, prices=prices)
        found.append(
            {
                # Bybit's row id; a row without one is known by what it is.
                "id": entry.entry_id or f"{entry.type}:{entry.currency}:{time_ms}:{entry.change}",
                "type": entry.type,
                "currency": entry.currency,
                "amount": str(amount),
                "usdt": decimal_text(value),
                "time_ms": time_ms,
            }
        )
    return found


def _transfers_merge(*, day: DailyPnL, found: list[dict], read_until: int) -> list[dict]:
    """Add the transfers the row does not hold yet (another worker may have added some); the ones added."""
    with transaction.atomic():
        row = DailyPnL.objects.select_for_update().get(pk=day.pk)
        known = {transfer["id"] for transfer in row.transfers}
        added = [transfer for transfer in found if transfer["id"] not in known]
        row.transfers = [*row.transfers, *added]
        row.transfers_read_ms = max(row.transfers_read_ms or 0, read_until)
        row.save(update_fields=["transfers", "transfers_read_ms"])
    day.transfers, day.transfers_read_ms = row.transfers, row.transfers_read_ms
    return added


def _transfer_journal(*, day: DailyPnL, transfer: dict, now: datetime) -> None:
    valued = transfer["usdt"] is not None
    decision_record(
        strategy=STRATEGY,
        action="daily_transfer",
        outcome=TAKEN if valued else FAILED,
        reason_code=transfer["type"] if valued else "transfer_unvalued",
        details={"date": day.date.isoformat(), "account": day.account, **transfer},
        at=now,
    )
    if valued:
        logger.info(
            "daily_transfer date=%s type=%s currency=%s amount=%s usdt=%s",
            day.date,
            transfer["type"],
            transfer["currency"],
            transfer["amount"],
            transfer["usdt"],
        )
    else:
        # The wallet holds none of the coin any more, so it has no price: its value stays in the PnL.
        logger.warning(
            "daily_transfer_unvalued date=%s type=%s currency=%s amount=%s",
            day.date,
            transfer["type"],
            transfer["currency"],
            transfer["amount"],
        )


def _unreadable(*, day: DailyPnL, error: GatewayError, now: datetime) -> None:
    if not failure_journal_due(UNREADABLE):
        return
    logger.warning(
        "daily_transfers_unreadable date=%s code=%s error=%s net_transfers=%s",
        day.date,
        error.code,
        type(error).__name__,
        day.net_transfers,
    )
    decision_record(
        strategy=STRATEGY,
        action="daily_transfers",
        outcome=FAILED,
        reason_code="transaction_log_unreadable",
        details={
            "date": day.date.isoformat(),
            "account": day.account,
            "code": error.code,
            "error": type(error).__name__,
            "note": "the daily control goes on with the transfers it already knows",
            "net_transfers": decimal_text(day.net_transfers),
        },
        at=now,
    )
