import asyncio

from django.core.management.base import BaseCommand

from controlpanel.process import run_process


async def engine_main(stop: asyncio.Event) -> None:
    # The liquidation loop (feed -> decide -> order) plugs in here (issue 4); until then
    # the engine process only keeps its heartbeat so the process set is complete.
    await stop.wait()


class Command(BaseCommand):
    help = "Run the liquidation engine (one asyncio process)."

    def handle(self, *args, **options):
        asyncio.run(run_process("engine", engine_main))
