"""The Telegram adapter shared by the bot and by senders of alerts: Bot API URLs, token
redaction in logs, and `alert_send` to every allowlisted chat."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from django.conf import settings
from telegram import Bot
from telegram.constants import MessageLimit
from telegram.error import Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

logger = logging.getLogger(__name__)

# One retry covers a dropped connection or a short flood wait; longer waits are
# not worth holding a Celery worker or a panic for.
ALERT_ATTEMPTS = 2
ALERT_MAX_RETRY_AFTER_S = 5.0

REDACTED = "<TELEGRAM_BOT_TOKEN>"
_REDACTED_LOGGER_ROOTS = ("telegram", "telegram_bridge", "httpx", "httpcore")


def bot_api_urls() -> tuple[str, str]:
    """PTB's base_url and base_file_url for TELEGRAM_API_BASE_URL (PTB appends the token)."""
    root = settings.TELEGRAM_API_BASE_URL.rstrip("/")
    return f"{root}/bot", f"{root}/file/bot"


class TokenRedactingFilter(logging.Filter):
    """Replace the bot token in a record's message and traceback.

    Every Bot API URL contains the token. Settings keep httpx at WARNING, but PTB
    itself logs the API URL at DEBUG when a Bot is created, and its InvalidToken
    from getMe quotes the token; this filter covers whatever slips through.
    """

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return True
        if self.token in message:
            record.msg, record.args = message.replace(self.token, REDACTED), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if self.token in text:
                record.exc_text = text.replace(self.token, REDACTED)
        return True


def token_redaction_install(token: str) -> None:
    """Put a TokenRedactingFilter on every PTB, httpx/httpcore and bridge logger (once per token)."""
    if not token:
        return
    names = set(_REDACTED_LOGGER_ROOTS) | {
        name for name in logging.root.manager.loggerDict if name.split(".")[0] in _REDACTED_LOGGER_ROOTS
    }
    for name in names:
        target = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) and f.token == token for f in target.filters):
            target.addFilter(TokenRedactingFilter(token))


# -- alerts -------------------------------------------------------------------


def _clip(text: str) -> str:
    limit = MessageLimit.MAX_TEXT_LENGTH
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def _send_one(bot: Bot, *, chat_id: int, text: str) -> bool:
    for attempt in range(1, ALERT_ATTEMPTS + 1):
        try:
            await bot.send_message(chat_id=chat_id, text=text)
            return True
        except RetryAfter as error:
            wait_s = _seconds(error.retry_after)
            if attempt == ALERT_ATTEMPTS or wait_s > ALERT_MAX_RETRY_AFTER_S:
                logger.warning(
                    "telegram_alert_failed chat_id=%s error=RetryAfter retry_after_s=%s", chat_id, wait_s
                )
                return False
            await asyncio.sleep(wait_s)
        except NetworkError as error:  # includes TimedOut: a retry may send twice, fine for an alert
            if attempt == ALERT_ATTEMPTS:
                logger.warning("telegram_alert_failed chat_id=%s error=%s", chat_id, type(error).__name__)
                return False
            await asyncio.sleep(1.0)
        except Forbidden:
            logger.warning(
                "telegram_alert_failed chat_id=%s error=Forbidden (bot blocked or removed)", chat_id
            )
            return False
        except TelegramError as error:  # BadRequest (chat not found), ...: retrying will not help
            logger.warning("telegram_alert_failed chat_id=%s error=%s", chat_id, type(error).__name__)
            return False
    return False


async def alert_send_async(text: str) -> list[int]:
    """Send `text` to every chat in TELEGRAM_ALLOWED_CHAT_IDS; return the chat ids reached.

    Without a bot token or chat ids this is a no-op (the bridge is optional).
    Never raises for Telegram or network failures; each is logged by error type only
    (PTB error texts can carry the token).
    """
    token = settings.TELEGRAM_BOT_TOKEN
    chat_ids = sorted(settings.TELEGRAM_ALLOWED_CHAT_IDS)
    if not token or not chat_ids:
        logger.info("telegram_alert_skipped reason=not_configured")
        return []
    text = _clip(text)
    token_redaction_install(token)
    base_url, base_file_url = bot_api_urls()
    bot = Bot(token, base_url=base_url, base_file_url=base_file_url)
    delivered: list[int] = []
    try:
        for attempt in range(1, ALERT_ATTEMPTS + 1):
            try:
                await bot.initialize()  # getMe: also checks the token
                break
            except InvalidToken:
                logger.error(
                    "telegram_alert_failed chat_id=all error=InvalidToken (TELEGRAM_BOT_TOKEN rejected)"
                )
                return []
            except TelegramError as error:
                if attempt == ALERT_ATTEMPTS:
                    logger.warning("telegram_alert_failed chat_id=all error=%s", type(error).__name__)
                    return []
                await asyncio.sleep(1.0)
        for chat_id in chat_ids:
            if await _send_one(bot, chat_id=chat_id, text=text):
                delivered.append(chat_id)
    finally:
        try:
            await bot.shutdown()
        except Exception as error:  # closing the HTTP client must not turn a sent alert into a failure
            logger.debug("telegram_alert_shutdown_failed error=%s", type(error).__name__)
    logger.info("telegram_alert_sent chats=%d of=%d", len(delivered), len(chat_ids))
    return delivered


def alert_send(text: str) -> list[int]:
    """Blocking `alert_send_async` for synchronous callers (Celery tasks, services, commands).

    From inside an event loop use `await alert_send_async(text)` instead: blocking the
    loop (the engine's, the bot's) for a network round trip is never acceptable.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(alert_send_async(text))
    raise RuntimeError("alert_send() would block the running event loop; use `await alert_send_async(text)`.")
