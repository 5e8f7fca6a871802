import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.process import run_process
from telegram_bridge.bot import BotTokenRejected, PollingStopped, bot_main


class Command(BaseCommand):
    help = (
        "Run the Telegram bridge (python-telegram-bot, long polling): /status, /kill, /resume, /close, /help."
    )

    def handle(self, *args, **options):
        if not settings.TELEGRAM_BOT_TOKEN:
            raise CommandError(
                "TELEGRAM_BOT_TOKEN is not set: the bridge has no bot to run as. "
                "Set it to the token from @BotFather, or leave the telegram process off."
            )
        if not settings.TELEGRAM_ALLOWED_CHAT_IDS:
            raise CommandError(
                "TELEGRAM_ALLOWED_CHAT_IDS is empty: the bot would obey no one. "
                "Set the comma-separated chat ids it may take commands from."
            )
        try:
            asyncio.run(run_process("telegram", bot_main))
        except (BotTokenRejected, PollingStopped) as error:
            raise CommandError(str(error)) from None
