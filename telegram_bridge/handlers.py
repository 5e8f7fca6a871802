"""Telegram command handlers: thin edges that call one service off the event loop and reply.

Every handler here is registered behind the chat allowlist (see `bot.py`) except
`chat_ignored`, which only counts the chats outside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone
from telegram import Update
from telegram.ext import ContextTypes

from panic.services import panic_trigger
from telegram_bridge import services
from trading.bybit import BybitGateway
from trading.flatten import FlattenReport, positions_flatten
from trading.models import Decision
from trading.services import trading_halt, trading_resume

logger = logging.getLogger(__name__)

# A switch command older than this was sent while the bridge was down (Telegram keeps
# updates for 24 h). Acting on it now could surprise its sender, e.g. a /resume
# sent an hour ago after someone else's /kill; the sender is told to send it again.
STALE_COMMAND_AFTER = timedelta(minutes=2)
IGNORED_CHATS_KEY = "ignored_chats"


def _db_call(function, /, *args, **kwargs):
    """Run an ORM call from a worker thread on a healthy connection (a long-lived process)."""
    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        close_old_connections()


async def _blocking(function, /, *args, **kwargs):
    return await asyncio.to_thread(_db_call, function, *args, **kwargs)


async def _reply(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    await context.bot.send_message(chat_id=update.effective_chat.id, text=text)


def _by(update: Update) -> str:
    return f"telegram:{update.effective_chat.id}"


async def _refused_as_stale(update: Update, context: ContextTypes.DEFAULT_TYPE, command: str) -> bool:
    sent_at = update.effective_message.date
    age = timezone.now() - sent_at
    if age <= STALE_COMMAND_AFTER:
        return False
    minutes = int(age.total_seconds() // 60)
    logger.warning(
        "telegram_command_stale command=%s chat_id=%s age_s=%d",
        command,
        update.effective_chat.id,
        int(age.total_seconds()),
    )
    await _reply(
        update,
        context,
        f"Ignored {command}: it was sent {minutes} min ago, while the bridge was offline. "
        f"Send it again if you still want it.",
    )
    return True


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _reply(update, context, services.HELP_TEXT)


def _read_command(command: str, text_of):
    """A handler that answers with ``text_of()`` (a blocking read: database and Redis), or
    says the read failed; the traceback goes to the log, not the chat."""

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.info("telegram_command command=%s chat_id=%s", command, update.effective_chat.id)
        try:
            text = await _blocking(text_of)
        except Exception as error:
            logger.exception(
                "telegram_command_failed command=%s chat_id=%s", command, update.effective_chat.id
            )
            text = f"/{command} failed ({type(error).__name__}); see the telegram process log."
        await _reply(update, context, text)

    handler.__name__ = f"{command}_command"
    return handler


status_command = _read_command("status", services.status_text)
positions_command = _read_command("positions", services.positions_text)
pnl_command = _read_command("pnl", services.pnl_text)


async def kill_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if await _refused_as_stale(update, context, "/kill"):
        return
    by = _by(update)
    logger.info("telegram_command command=kill chat_id=%s", update.effective_chat.id)
    try:
        state = await _blocking(trading_halt, by=by, reason="/kill")
    except Exception as error:
        logger.exception("telegram_command_failed command=kill chat_id=%s", update.effective_chat.id)
        await _reply(
            update,
            context,
            f"Halt FAILED ({type(error).__name__}): trading may NOT be halted. "
            f"Check /status, or halt from the dashboard.",
        )
        return
    await _reply(update, context, services.halt_reply(state))


async def resume_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if await _refused_as_stale(update, context, "/resume"):
        return
    by = _by(update)
    logger.info("telegram_command command=resume chat_id=%s", update.effective_chat.id)
    try:
        state = await _blocking(trading_resume, by=by)
    except Exception as error:
        logger.exception("telegram_command_failed command=resume chat_id=%s", update.effective_chat.id)
        await _reply(
            update,
            context,
            f"Resume FAILED ({type(error).__name__}): trading may still be halted. Check /status.",
        )
        return
    await _reply(update, context, services.resume_reply(state, by=by))


def _close_directly(*, run_key: str) -> FlattenReport:
    """/close's fallback when the panic service fails: the same reduce-only flatten, without the lock."""
    return positions_flatten(
        gateway=BybitGateway.from_settings(), strategy=Decision.Strategy.MANUAL, run_key=run_key
    )


async def close_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if await _refused_as_stale(update, context, "/close"):
        return
    by = _by(update)
    chat_id = update.effective_chat.id
    logger.info("telegram_command command=close chat_id=%s", chat_id)
    await _reply(update, context, services.CLOSE_STARTED_TEXT)
    try:
        result = await _blocking(panic_trigger, by=by, reason="/close")
    except Exception as panic_error:
        logger.exception("telegram_command_failed command=close step=panic chat_id=%s", chat_id)
        try:
            # The update id keeps the fallback's orderLinkIds stable if this update is handled twice.
            report = await _blocking(_close_directly, run_key=f"tgclose-{chat_id}-{update.update_id}")
        except Exception as close_error:
            logger.exception("telegram_command_failed command=close step=fallback chat_id=%s", chat_id)
            await _reply(update, context, services.close_failed_reply(panic_error, close_error))
            return
        await _reply(update, context, services.close_fallback_reply(report, panic_error))
        return
    await _reply(update, context, services.close_reply(result))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _reply(update, context, "Unknown command. /help lists the commands.")


async def chat_ignored(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message from a chat outside the allowlist: count it, log the chat once, never answer."""
    chat = update.effective_chat
    if chat is None:
        return
    counts: Counter = context.bot_data.setdefault(IGNORED_CHATS_KEY, Counter())
    counts[chat.id] += 1
    if counts[chat.id] == 1:
        user = update.effective_user
        # Ids only: the text of a stranger's message is none of our log's business.
        logger.warning(
            "telegram_chat_ignored chat_id=%s chat_type=%s user_id=%s (not in TELEGRAM_ALLOWED_CHAT_IDS; "
            "further messages from this chat are counted, not logged)",
            chat.id,
            chat.type,
            user.id if user else None,
        )


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # Reaches here mostly when a reply could not be sent; the token filter
    # (alerts.token_redaction_install) covers this logger too.
    logger.error("telegram_handler_failed error=%s", type(context.error).__name__, exc_info=context.error)
