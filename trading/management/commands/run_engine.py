import asyncio

from django.core.management.base import BaseCommand

from core.process import run_process
from trading.engine_runner import engine_main


class Command(BaseCommand):
    help = "Run the liquidation engine (one asyncio process: feed -> decision -> order)."

    def handle(self, *args, **options):
        asyncio.run(run_process("engine", engine_main))
