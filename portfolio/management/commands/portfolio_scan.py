"""`manage.py portfolio_scan [--dry-run]`: one PM trail pass and one scan now (``portfolio.manual``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portfolio.manual import manual_scan_lines, portfolio_scan_now
from trading.bybit import BybitGateway
from trading.errors import GatewayError


class Command(BaseCommand):
    help = (
        "Run the portfolio strategy once now: a trail pass (exits, adds) and a scan (entries), "
        "with the tasks' lock and journal, and print what it did and why, each skip with its "
        "reason code. --dry-run decides without sending orders or writing anything."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="decide and print; send and write nothing")

    def handle(self, *args, dry_run, **options):
        try:
            gateway = BybitGateway.from_settings()
            gateway.prepare()
            run = portfolio_scan_now(gateway=gateway, now=timezone.now(), dry_run=dry_run)
        except GatewayError as error:
            # error.message is Bybit's retMsg or our own words, never the request.
            raise CommandError(
                f"The exchange did not answer as needed: {type(error).__name__}: {error.message}"
            ) from None
        for line in manual_scan_lines(run):
            self.stdout.write(line)
