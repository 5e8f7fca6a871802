"""The python-telegram-bot application: handlers behind the chat allowlist, long polling.

`bot_main(stop)` is what `manage.py run_telegram` runs under `run_process`, which
adds the heartbeat and turns SIGINT/SIGTERM into `stop`. Start-up retries while the
Bot API is unreachable (the process must not die on a network blip); a token that
Telegram rejects stops the process with a clear error instead.
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings
from telegram import BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from telegram_bridge import confirm, handlers
from telegram_bridge.alerts import bot_api_urls, token_redaction_install

logger = logging.getLogger(__name__)

# The commands Telegram shows in its menu; /help says the same (services.HELP_TEXT).
COMMANDS = (
    ("status", "mode, switches, equity, PnL today, positions, health, engine"),
    ("positions", "open positions with TP/SL and liquidation price"),
    ("pnl", "realised PnL per strategy: today and the last 7 days"),
    ("kill", "halt every strategy (asks first)"),
    ("resume", "lift the halt set by /kill"),
    ("close", "panic: lock trading, cancel all orders, close all positions (asks first)"),
    ("help", "list the commands"),
)
# The beat's alert checks and digest flush, run here too: while the worker (or beat) is
# down, the process that delivers alerts still says a process is missing, and flushes.
ALERT_WATCH_S = 10.0
POLL_TIMEOUT_S = 10.0  # getUpdates long-poll; Telegram holds the request open this long
STARTUP_RETRY_S = 5.0
POLLING_ERROR_LOG_EVERY_S = 60.0
# PTB names its polling task; watching it tells us when polling died for good (InvalidToken).
POLLING_TASK_NAME = "Updater:start_polling:polling_task"


class BotTokenRejected(Exception):
    """Telegram answered 401 Unauthorized: TELEGRAM_BOT_TOKEN is wrong or was revoked."""

    def __init__(self) -> None:
        # Never the token itself: PTB's own InvalidToken message quotes it.
        super().__init__(
            "Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized). "
            "Check the token from @BotFather; it may have been revoked."
        )


class PollingStopped(Exception):
    """Polling ended although nobody asked the bridge to stop."""


def application_build() -> Application:
    """The bot with its handlers; every command is obeyed only in TELEGRAM_ALLOWED_CHAT_IDS and,
    when TELEGRAM_ALLOWED_USER_IDS is set, only from those users."""
    token = settings.TELEGRAM_BOT_TOKEN
    token_redaction_install(token)
    base_url, base_file_url = bot_api_urls()
    application = ApplicationBuilder().token(token).base_url(base_url).base_file_url(base_file_url).build()
    token_redaction_install(token)  # again: building the application created more PTB loggers

    allowed = filters.Chat(chat_id=settings.TELEGRAM_ALLOWED_CHAT_IDS)
    user_ids = settings.TELEGRAM_ALLOWED_USER_IDS
    # Optional: in a group every member could command the bot; TELEGRAM_ALLOWED_USER_IDS narrows it.
    users = filters.User(user_id=user_ids) if user_ids else filters.ALL
    # New messages only: editing an old "/resume" must not run it a second time.
    obeyed = allowed & users & filters.UpdateType.MESSAGE
    application.bot_data[confirm.CONFIRMATIONS_KEY] = confirm.Confirmations(
        ttl_s=float(getattr(settings, "TELEGRAM_CONFIRM_TTL_S", confirm.CONFIRM_TTL_S))
    )
    application.add_handler(CommandHandler(["help", "start"], handlers.help_command, filters=obeyed))
    application.add_handler(CommandHandler("status", handlers.status_command, filters=obeyed))
    application.add_handler(CommandHandler("positions", handlers.positions_command, filters=obeyed))
    application.add_handler(CommandHandler("pnl", handlers.pnl_command, filters=obeyed))
    application.add_handler(CommandHandler("kill", handlers.kill_command, filters=obeyed))
    application.add_handler(CommandHandler("resume", handlers.resume_command, filters=obeyed))
    application.add_handler(CommandHandler("close", handlers.close_command, filters=obeyed))
    # Only in private chats: in a group, "/x@otherbot" is someone else's command.
    application.add_handler(
        MessageHandler(obeyed & filters.ChatType.PRIVATE & filters.COMMAND, handlers.unknown_command)
    )
    # /close and /kill's confirm and cancel buttons (the handler checks the allowlists itself).
    application.add_handler(CallbackQueryHandler(handlers.confirm_button, pattern=r"^(confirm|cancel):"))
    application.add_handler(MessageHandler(~allowed, handlers.chat_ignored))
    if user_ids:
        application.add_handler(MessageHandler(allowed & ~users, handlers.user_ignored))
    application.add_error_handler(handlers.on_error)
    return application


class _PollingErrorLog:
    """PTB retries getUpdates forever; say so at most once a minute per error type."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def __call__(self, error: TelegramError) -> None:
        name, now = type(error).__name__, time.monotonic()
        if now - self._last.get(name, float("-inf")) >= POLLING_ERROR_LOG_EVERY_S:
            self._last[name] = now
            logger.warning("telegram_polling_failed error=%s (retrying)", name)


async def _wait(stop: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=timeout_s)
    except TimeoutError:
        pass


async def _start(
    application: Application, stop: asyncio.Event, *, poll_timeout_s: float, retry_s: float
) -> bool:
    """Initialize (getMe), publish the command menu, start polling; retry until it works or `stop`."""
    attempt = 0
    while not stop.is_set():
        try:
            await application.initialize()
            await _commands_publish(application)
            await application.updater.start_polling(
                timeout=poll_timeout_s,
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],  # messages and button presses
                error_callback=_PollingErrorLog(),
            )
            await application.start()
            return True
        except InvalidToken:
            raise BotTokenRejected() from None
        except TelegramError as error:  # NetworkError, TimedOut, RetryAfter, Conflict, ...
            attempt += 1
            if attempt == 1 or attempt % 20 == 0:
                logger.warning(
                    "telegram_unavailable attempt=%d error=%s (retrying every %gs)",
                    attempt,
                    type(error).__name__,
                    retry_s,
                )
        await _wait(stop, retry_s)
    return False


async def _commands_publish(application: Application) -> None:
    # The menu is a convenience: failing to set it must not keep the bridge down.
    try:
        await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
    except InvalidToken:
        raise
    except TelegramError as error:
        logger.warning("telegram_commands_not_set error=%s", type(error).__name__)


def _polling_task() -> asyncio.Task | None:
    return next((t for t in asyncio.all_tasks() if t.get_name() == POLLING_TASK_NAME), None)


async def _serve(stop: asyncio.Event) -> None:
    """Wait for `stop`; raise if polling ends on its own (PTB gives up only on a rejected token)."""
    polling = _polling_task()
    stop_waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait(
            {stop_waiter, polling} if polling else {stop_waiter}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stop_waiter.cancel()
    if stop.is_set() or polling is None or not polling.done():
        return
    error = None if polling.cancelled() else polling.exception()
    if isinstance(error, InvalidToken):
        raise BotTokenRejected() from None
    raise PollingStopped(f"Telegram polling stopped unexpectedly ({type(error).__name__}).")


async def _stop(application: Application) -> None:
    """Stop polling (confirming fetched updates to Telegram), then the application, which first
    handles every update already fetched, then close the HTTP clients."""
    if application.updater is not None and application.updater.running:
        try:
            await application.updater.stop()
        except Exception as error:  # polling already died (the reason was raised by _serve)
            logger.warning("telegram_stop_step_failed step=updater error=%s", type(error).__name__)
    if application.running:
        await application.stop()
    await application.shutdown()
    await application.bot.shutdown()  # when initialize() never completed, shutdown() above skipped it


def _alert_watch_once() -> None:
    from core.alert_checks import alert_checks_step
    from core.alerts import alert_digests_flush

    try:
        handlers._db_call(alert_checks_step)
        handlers._db_call(alert_digests_flush)
    except Exception as error:  # Redis or the database down: the dashboard says so; try again
        logger.warning("telegram_alert_watch_failed error=%s", type(error).__name__)


async def _alert_watch(stop: asyncio.Event, every_s: float) -> None:
    """`core.alert_checks` and the digest flush every `every_s`, off the loop. Once-per-outage
    bookkeeping is in Redis, so running beside the beat's copies alerts nothing twice."""
    while not stop.is_set():
        await asyncio.to_thread(_alert_watch_once)
        await _wait(stop, every_s)


async def bot_main(
    stop: asyncio.Event,
    *,
    application: Application | None = None,
    poll_timeout_s: float = POLL_TIMEOUT_S,
    retry_s: float = STARTUP_RETRY_S,
    alert_watch_s: float | None = ALERT_WATCH_S,
) -> None:
    """Run the bridge until `stop` is set (and, every `alert_watch_s`, the alert checks)."""
    application = application or application_build()
    watch = None
    try:
        if not await _start(application, stop, poll_timeout_s=poll_timeout_s, retry_s=retry_s):
            return
        logger.info(
            "telegram_started bot=%s chats=%d users=%s",
            application.bot.username,
            len(settings.TELEGRAM_ALLOWED_CHAT_IDS),
            len(settings.TELEGRAM_ALLOWED_USER_IDS) or "any",
        )
        if alert_watch_s:
            watch = asyncio.create_task(_alert_watch(stop, alert_watch_s), name="alert-watch")
        await _serve(stop)
    finally:
        if watch is not None:
            watch.cancel()
        await _stop(application)
        logger.info("telegram_stopped")
