"""`manage.py backtest`: a recorded market through the live rules (controlpanel.backtest)."""

import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from controlpanel.backtest.config import backtest_config
from controlpanel.backtest.report import report_write, summary, terminal_table
from controlpanel.backtest.runner import backtest_directory
from controlpanel.config_files import ConfigFileError


def _time_ms(text: str | None) -> int | None:
    """ISO 8601 (UTC unless it says otherwise) or ms since the epoch."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


class Progress:
    """One stderr line, rewritten in place: done / total, rate, elapsed."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        width = 30
        filled = width * done // max(total, 1)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} liquidations  {elapsed:5.1f} s"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


class Command(BaseCommand):
    help = "Backtest a replay directory (liquidations.jsonl + klines/) through the live trading rules."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, required=True, help="replay directory")
        parser.add_argument("--coins", type=Path, help="coins.json (default: the database's coins)")
        # manage.py hands --settings over as --settings-file (Django owns --settings).
        parser.add_argument("--settings-file", type=Path, help="settings.json (also accepted as --settings)")
        parser.add_argument("--from", dest="from_time", help="start, ISO 8601 UTC or ms")
        parser.add_argument("--to", dest="to_time", help="end, ISO 8601 UTC or ms")
        parser.add_argument("--equity", default="10000", help="starting wallet, USDT (default 10000)")
        parser.add_argument("--out", type=Path, default=Path("backtest.html"), help="the HTML report")
        parser.add_argument("--sweep", help='a grid over coin settings, e.g. "long_offset_pct=0.2:1.0:0.2"')
        parser.add_argument("--max-drawdown", default="5", help="sweep: drawdown limit, %% of equity")
        parser.add_argument("--workers", type=int, default=0, help="sweep: processes (default all cores)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, data, coins, settings_file, from_time, to_time, equity, out, sweep, **options):
        if not data.is_dir():
            raise CommandError(f"--data {data}: not a directory")
        try:
            coin_rules, risk = backtest_config(coins_path=coins, settings_path=settings_file)
        except ConfigFileError as error:
            raise CommandError(str(error)) from None
        if not coin_rules:
            raise CommandError("No coins: give --coins coins.json or import some first.")
        equity = Decimal(equity)
        window = {"from_ms": _time_ms(from_time), "to_ms": _time_ms(to_time)}
        if sweep:
            from controlpanel.backtest.sweep import sweep_command

            return sweep_command(
                self.stdout,
                data=data,
                coins=coin_rules,
                risk=risk,
                equity=equity,
                grid=sweep,
                max_drawdown_pct=Decimal(options["max_drawdown"]),
                workers=options["workers"],
                out=out,
                **window,
            )
        progress = None if options["no_progress"] else Progress(sys.stderr)
        result = backtest_directory(
            data, coins=coin_rules, risk=risk, equity=equity, progress=progress, **window
        )
        figures = summary(result)
        summary_path = report_write(figures, out, title=data.name)
        self.stdout.write(terminal_table(figures))
        self.stdout.write(f"report {out}, summary {summary_path}")
