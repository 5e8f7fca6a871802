"""The pnl_log.csv export of the daily record (``DailyPnL``): the ``export_pnl`` command and the
admin's export action both write it with ``pnl_log_write``."""

from __future__ import annotations

import csv
from datetime import date
from typing import TextIO

from risk.models import DailyPnL

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
        writer.writerow([getattr(day, column) for column in PNL_LOG_COLUMNS])
        count += 1
    return count
