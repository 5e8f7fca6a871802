"""Write the daily PnL record as pnl_log.csv (the old bots' format: one row per UTC day and
account, the account in the last column)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from risk.pnl_log import pnl_log_write


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {text!r}") from None


class Command(BaseCommand):
    help = "Export the daily PnL rows (oldest first) as CSV: pnl_log.csv, or '-' for stdout."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", default="pnl_log.csv", help="file to write; '-' = stdout")
        parser.add_argument("--since", type=_date, help="first UTC date to include (YYYY-MM-DD)")
        parser.add_argument("--until", type=_date, help="last UTC date to include (YYYY-MM-DD)")

    def handle(self, *args, output, since, until, **options):
        if since and until and since > until:
            raise CommandError("--since is after --until")
        if output == "-":
            pnl_log_write(out=self.stdout, since=since, until=until)
            return
        path = Path(output)
        # newline="": the csv module writes its own line endings.
        with path.open("w", newline="", encoding="utf-8") as out:
            count = pnl_log_write(out=out, since=since, until=until)
        self.stdout.write(f"wrote {count} day(s) to {path}")
