"""Telegram command handlers: thin edges that call one service off the event loop and reply.

Every handler here is registered behind the chat (and user) allowlist (see `bot.py`)
except `chat_ignored` and `user_ignored`, which only count who is outside it, and
`confirm_button`, which checks the allowlist itself (PTB's callback-query handler
takes no filters). /close and /kill ask first (`telegram_bridge.confirm`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from core.access import access_refused
from panic.fallback import panic_fallback_close
from panic.services import panic_trigger
from telegram_bridge import confirm, services
from trading.services import trading_halt, trading_resume

logger = logging.getLogger(__name__)

# A switch command older than this was sent while the bridge was down (Telegram keeps
# updates for 24 h). Acting on it now could surprise its sender, e.g. a /resume
# sent an hour ago after someone else's /kill; the sender is told to send it again.
STALE_COMMAND_AFTER = timedelta(minutes=2)
IGNORED_CHATS_KEY = "ignored_chats"
IGNORED_USERS_KEY = "ignored_users"


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
    """Who acted: the chat, and in a group also the user (a private chat's id is its user's)."""
    chat_id, user = update.effective_chat.id, update.effective_user
    if user is None or user.id == chat_id:
        return f"telegram:{chat_id}"
    return f"telegram:{chat_id}:{user.id}"


def obeyed(*, chat_id: int, user_id: int | None) -> bool:
    """The allowlists: the chat in TELEGRAM_ALLOWED_CHAT_IDS and, when TELEGRAM_ALLOWED_USER_IDS
    is set, the user in it."""
    users = settings.TELEGRAM_ALLOWED_USER_IDS
    return chat_id in settings.TELEGRAM_ALLOWED_CHAT_IDS and (not users or user_id in users)


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


# -- /kill and /close: ask, then act on a confirmation ----------------------------------------


def _confirmations(context: ContextTypes.DEFAULT_TYPE) -> confirm.Confirmations:
    return context.bot_data.setdefault(confirm.CONFIRMATIONS_KEY, confirm.Confirmations())


async def _ask(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
    """Say what `action` would do, with its confirm and cancel buttons; do nothing yet."""
    confirmations = _confirmations(context)
    ask_text = services.close_ask_text if action == "close" else services.kill_ask_text
    text = await _blocking(ask_text, ttl_s=confirmations.ttl_s)
    request = confirmations.ask(
        action=action, chat_id=update.effective_chat.id, user_id=update.effective_user.id
    )
    label = services.CLOSE_BUTTON if action == "close" else services.KILL_BUTTON
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label, callback_data=f"confirm:{action}:{request.nonce}"),
                InlineKeyboardButton(
                    services.CANCEL_BUTTON, callback_data=f"cancel:{action}:{request.nonce}"
                ),
            ]
        ]
    )
    logger.info(
        "telegram_confirm_asked action=%s chat_id=%s user_id=%s",
        action,
        update.effective_chat.id,
        update.effective_user.id,
    )
    message = await context.bot.send_message(
        chat_id=update.effective_chat.id, text=text, reply_markup=keyboard
    )
    request.message_id, request.text = message.message_id, text


async def _switch_command(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
    """/kill and /close: alone they ask; with "confirm" they act on this user's request."""
    if await _refused_as_stale(update, context, f"/{action}"):
        return
    args = [arg.lower() for arg in context.args or []]
    if not args:
        await _ask(update, context, action)
        return
    if args != ["confirm"]:
        usage = services.CONFIRM_USAGE_TEXT.format(action=action, ttl=_confirmations(context).ttl_s)
        await _reply(update, context, usage)
        return
    confirmations = _confirmations(context)
    why, request = confirmations.take(
        action=action, chat_id=update.effective_chat.id, user_id=update.effective_user.id
    )
    _confirm_log(update, action=action, how="typed", why=why)
    if why != confirm.OK:
        if why in (confirm.EXPIRED, confirm.REPLACED):
            await _buttons_remove(context, request, f"({why}: nothing done)")
        await _reply(
            update, context, services.confirm_refused_text(action=action, why=why, ttl_s=confirmations.ttl_s)
        )
        return
    await _buttons_remove(context, request, f"Confirmed by {_by(update)} (typed).")
    await _act(update, context, action)


async def kill_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _switch_command(update, context, "kill")


async def close_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _switch_command(update, context, "close")


def _confirm_log(update: Update, *, action: str, how: str, why: str) -> None:
    log = logger.warning if why == confirm.OK else logger.info
    log(
        "telegram_confirm action=%s how=%s outcome=%s chat_id=%s user_id=%s",
        action,
        how,
        why,
        update.effective_chat.id,
        update.effective_user.id if update.effective_user else None,
    )


async def confirm_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press on a confirm or cancel button; the answer (a notice only the presser sees) says
    what happened. Checks the allowlists itself: PTB's callback handler takes no filters."""
    query = update.callback_query
    chat, user = update.effective_chat, update.effective_user
    try:
        verb, action, nonce = (query.data or "").split(":", 2)
    except ValueError:
        await query.answer()
        return
    if chat is None or action not in ("close", "kill") or not obeyed(chat_id=chat.id, user_id=user.id):
        logger.warning(
            "telegram_button_ignored chat_id=%s user_id=%s (outside the allowlist)",
            chat.id if chat else None,
            user.id,
        )
        await _journal_stranger(update, reason="telegram_button", what=f"button {action}")
        await query.answer("You are not allowed to command this bot. Nothing done.", show_alert=True)
        return
    confirmations = _confirmations(context)
    why, request = confirmations.take(action=action, chat_id=chat.id, user_id=user.id, nonce=nonce)
    _confirm_log(update, action=action, how=verb, why=why)
    if why != confirm.OK:
        text = services.confirm_refused_text(action=action, why=why, ttl_s=confirmations.ttl_s)
        await query.answer(text, show_alert=True)
        if why in (confirm.EXPIRED, confirm.REPLACED):  # a done request's buttons went when it was done
            await _buttons_remove(context, request, f"({why}: nothing done)")
        return
    if verb == "cancel":
        await query.answer(f"/{action} cancelled. Nothing done.")
        await _buttons_remove(context, request, f"Cancelled by {_by(update)}: nothing done.")
        return
    await query.answer(f"/{action} confirmed.")
    await _buttons_remove(context, request, f"Confirmed by {_by(update)}.")
    await _act(update, context, action)


async def _buttons_remove(context: ContextTypes.DEFAULT_TYPE, request: confirm.Request, note: str) -> None:
    """Take the buttons off the question and say why; a failed edit changes nothing else."""
    message_id, request.message_id = request.message_id, None  # once
    if message_id is None:
        return
    try:
        await context.bot.edit_message_text(
            chat_id=request.chat_id,
            message_id=message_id,
            text=f"{request.text}\n\n{note}",
            reply_markup=None,
        )
    except TelegramError as error:
        logger.info("telegram_buttons_not_removed error=%s", type(error).__name__)


async def _act(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
    if action == "kill":
        await _kill(update, context)
    else:
        await _close(update, context)


async def _kill(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    by = _by(update)
    logger.info("telegram_command command=kill by=%s", by)
    try:
        state = await _blocking(trading_halt, by=by, reason="/kill")
    except Exception as error:
        logger.exception("telegram_command_failed command=kill by=%s", by)
        await _reply(
            update,
            context,
            f"Halt FAILED ({type(error).__name__}): trading may NOT be halted. "
            f"Check /status, or halt from the dashboard.",
        )
        return
    await _reply(update, context, services.halt_reply(state))


async def _close(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    by = _by(update)
    chat_id = update.effective_chat.id
    logger.info("telegram_command command=close by=%s", by)
    await _reply(update, context, services.CLOSE_STARTED_TEXT)
    try:
        result = await _blocking(panic_trigger, by=by, reason="/close")
    except Exception as panic_error:
        logger.exception("telegram_command_failed command=close step=panic by=%s", by)
        # The update id keeps the fallback's orderLinkIds stable if this update is handled twice.
        try:
            fallback = await _blocking(
                panic_fallback_close,
                by=by,
                reason="/close (fallback)",
                run_key=f"tgclose-{chat_id}-{update.update_id}",
            )
        except Exception as close_error:  # it reports its own failures; this is a bug's last word
            logger.exception("telegram_command_failed command=close step=fallback by=%s", by)
            await _reply(update, context, services.close_failed_reply(panic_error, close_error))
            return
        await _reply(update, context, services.close_fallback_reply(fallback, panic_error))
        return
    await _reply(update, context, services.close_reply(result))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _reply(update, context, "Unknown command. /help lists the commands.")


async def _journal_stranger(update: Update, *, reason: str, what: str | None = None) -> None:
    """Journal a refused stranger (`core.access`): chat and user ids, and the command word only
    (the rest of a stranger's text is none of our journal's business)."""
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    if what is None:
        words = (message.text or "").split() if message is not None else []
        what = words[0][:40] if words and words[0].startswith("/") else "message"
    source = f"{chat.id if chat else None}:{user.id if user else None}"
    await _blocking(access_refused, channel="telegram", reason=reason, source=source, target=what)


async def chat_ignored(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message from a chat outside the allowlist: count it, log the chat once, never answer."""
    chat = update.effective_chat
    if chat is None:
        return
    counts: Counter = context.bot_data.setdefault(IGNORED_CHATS_KEY, Counter())
    counts[chat.id] += 1
    await _journal_stranger(update, reason="telegram_chat")
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


async def user_ignored(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message in an allowed chat from a user outside TELEGRAM_ALLOWED_USER_IDS: count it, log
    the user once, never answer (in a group, an answer would only be noise)."""
    user = update.effective_user
    if user is None:
        return
    counts: Counter = context.bot_data.setdefault(IGNORED_USERS_KEY, Counter())
    counts[user.id] += 1
    await _journal_stranger(update, reason="telegram_user")
    if counts[user.id] == 1:
        logger.warning(
            "telegram_user_ignored chat_id=%s user_id=%s (not in TELEGRAM_ALLOWED_USER_IDS; "
            "further messages from this user are counted, not logged)",
            update.effective_chat.id if update.effective_chat else None,
            user.id,
        )


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # Reaches here mostly when a reply could not be sent; the token filter
    # (alerts.token_redaction_install) covers this logger too.
    logger.error("telegram_handler_failed error=%s", type(context.error).__name__, exc_info=context.error)
