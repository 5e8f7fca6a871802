"""`python manage.py run_sim`: run the local Bybit V5 simulator (see docs/simulator.md)."""

from django.core.management.base import BaseCommand, CommandError

from core.heartbeat import heartbeat_start
from simulator import cli, run


class Command(BaseCommand):
    help = "Run the local Bybit V5 simulator (REST + websockets + Binance liquidation stream) on one port."

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            sim_options = cli.options_from(options)
        except ValueError as problem:
            raise CommandError(str(problem)) from None
        # The panel's health view lists the simulator too; the venue itself knows nothing of Redis.
        heartbeat_start("sim")
        run(sim_options)
