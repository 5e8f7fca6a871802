"""The alert hook: services say what happened, an adapter delivers it.

Services call `alert_send(text, kind=...)`; nothing here knows Telegram. An adapter (the
Telegram bridge, in its `AppConfig.ready()`) registers a sender; until one does, an alert
is only logged. `alert_send` never raises: an alert that cannot go out must not break the
risk or panic action that sent it. Senders are called in the caller's thread and block
(Celery tasks, services, commands); from inside an event loop, don't call this.

Kinds name what happened, so an adapter can filter or format them: `panic`,
`panic_reset`, `daily_limit`, `daily_rollover`, `tpsl_close`, `im_warn`, `im_reduce`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

AlertSender = Callable[..., object]  # sender(text, *, kind)

_senders: dict[str, AlertSender] = {}


def alert_sender_register(name: str, sender: AlertSender) -> None:
    """Add (or replace) the sender called `name`."""
    _senders[name] = sender


def alert_sender_unregister(name: str) -> None:
    _senders.pop(name, None)


def alert_send(text: str, *, kind: str) -> None:
    """Hand `text` to every registered sender; log, never raise, when one fails."""
    if not _senders:
        logger.info("alert_not_sent kind=%s reason=no_sender", kind)
        return
    for name, sender in list(_senders.items()):
        try:
            sender(text, kind=kind)
        except Exception as error:  # the last guard: a sender reports its own failures
            logger.error("alert_failed kind=%s sender=%s error=%s", kind, name, type(error).__name__)
