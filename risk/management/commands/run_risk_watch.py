import asyncio

from django.core.management.base import BaseCommand

from core.process import run_process
from risk.watch import risk_watch_main


class Command(BaseCommand):
    help = "Run the risk watch: the daily stop and the IM watch driven by the account's streams."

    def handle(self, *args, **options):
        asyncio.run(run_process("riskwatch", risk_watch_main))
