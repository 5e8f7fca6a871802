"""pnl_log.csv, the daily record (``DailyPnL``) as the old bots wrote it: the ``export_pnl``
command and the admin's export action write it whole with ``pnl_log_write``, and the daily
control appends to ``PNL_LOG_CSV`` (when set) with ``pnl_log_changes``, as the old bots did.

What the daily control appends, one line per change of the record, never one per pass:

- a new row (the day's or a new account's baseline): its first line, and the final line of
  the row it ends: the same account's previous day, or (a change of account mid-day) the
  row of the account traded until now;
- a baseline rebased (the first equity read after a stand-in): the row again;
- an outcome change (daily target or stop hit): the row, after its flatten.

So the last line of a (date, account) is that day's final figure once the next day began.
Every line has the columns of the export, and the file's header is written when it is new.
A file that cannot be written costs a warning (once, until it works again), never the pass.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from django.conf import settings

from risk.models import DailyPnL

if TYPE_CHECKING:  # the daily control's result; risk.daily imports this module
    from risk.daily import DailyControlResult

logger = logging.getLogger(__name__)

# The columns of the old pnl_log.csv, in its order (the admin's export writes the same), then
# the measured account (a day with a change of account has a row per account) and the day's
# net transfers (deposits in minus withdrawals out: not in the PnL).
PNL_LOG_COLUMNS = (
    "date",
    "baseline_equity",
    "last_equity",
    "pnl_usdt",
    "pnl_pct",
    "high_equity",
    "low_equity",
    "outcome",
    "account",
    "net_transfers",
)


def pnl_log_write(*, out: TextIO, since: date | None = None, until: date | None = None, rows=None) -> int:
    """Write DailyPnL rows, oldest first, as pnl_log.csv to ``out``; returns the number of days.

    ``since``/``until`` bound the UTC dates, both inclusive; ``rows`` (a queryset, e.g.
    the admin's selection) limits it further. Money keeps the record's four decimals,
    written exactly as stored.
    """
    rows = (DailyPnL.objects.all() if rows is None else rows).order_by("date", "id")
    if since is not None:
        rows = rows.filter(date__gte=since)
    if until is not None:
        rows = rows.filter(date__lte=until)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PNL_LOG_COLUMNS)
    count = 0
    for day in rows.iterator():
        writer.writerow(pnl_log_row(day))
        count += 1
    return count


def pnl_log_row(day: DailyPnL) -> list:
    return [getattr(day, column) for column in PNL_LOG_COLUMNS]


# True while appends to PNL_LOG_CSV fail in this process: the warning is said once per outage.
_append_failing = False


def pnl_log_append(*, days: Iterable[DailyPnL], path: str | Path) -> bool:
    """Append one line per row to the CSV at ``path`` (with the header when the file is new or
    empty), in one write, so lines from two processes never interleave. False when the file
    could not be written: logged once until an append works again, never raised."""
    global _append_failing
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for day in days:
        writer.writerow(pnl_log_row(day))
    try:
        with open(path, "a", newline="", encoding="utf-8") as out:
            header = "" if out.tell() else ",".join(PNL_LOG_COLUMNS) + "\n"
            out.write(header + text.getvalue())
    except OSError as error:
        if not _append_failing:
            logger.warning(
                "pnl_log_append_failed path=%s error=%s (the daily control goes on; said once)",
                path,
                type(error).__name__,
            )
        _append_failing = True
        return False
    if _append_failing:
        logger.info("pnl_log_append_restored path=%s", path)
    _append_failing = False
    return True


def pnl_log_changes(result: DailyControlResult) -> list[DailyPnL]:
    """The rows a daily control pass changed, as ``PNL_LOG_CSV`` lines (see the module's
    opening); the rows appended ([] when the path is unset or nothing changed)."""
    path = settings.PNL_LOG_CSV
    rebased = result.baseline_source == DailyPnL.BaselineSource.REBASED and not result.baseline_created
    if not path or not (result.baseline_created or rebased or result.acted):
        return []
    rows = DailyPnL.objects.filter(date=result.date, account=result.account)
    day = rows.first()
    if day is None:
        return []
    days = []
    if result.baseline_created:
        ended = (
            DailyPnL.objects.filter(date=result.date).exclude(pk=day.pk)
            if result.account_changed
            else DailyPnL.objects.filter(account=day.account, date__lt=day.date)
        )
        previous = ended.order_by("-date", "-updated_at", "-id").first()
        if previous is not None:
            days.append(previous)
    days.append(day)
    pnl_log_append(days=days, path=path)
    return days
