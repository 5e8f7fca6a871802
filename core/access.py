"""The journal of refused access: every edge that turns someone away says so here, once.

The client-network middleware (HTTP and websockets), the API's token check, Django's CSRF
failure view and the Telegram bridge's allowlist all call `access_refused`. It writes an
`AccessRefusal` row (shown in the admin) and logs one `access_refused` line. Refusals come
in floods (a scanner, a bot in a stranger's group), so each process writes the same
(channel, reason, source) at most once per `WRITE_EVERY_S`, folding the refusals in between
into the next write's `count`, and a row covers an hour. Journaling never decides anything
and never fails the refusal: a database error is logged and swallowed.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

logger = logging.getLogger(__name__)

WRITE_EVERY_S = 10.0
# Sources remembered for the throttle; past this (a scan from many addresses) it starts over.
MAX_TRACKED = 10_000
ROW_SPAN = timedelta(hours=1)
_pending: dict[tuple[str, str, str], tuple[float, int]] = {}  # key -> (last write, refusals since)
_lock = threading.Lock()


def _clip(text: str, length: int) -> str:
    # Printable only: a path or command from outside must not forge log lines.
    text = "".join(character if character.isprintable() else "?" for character in str(text))
    return text[:length]


def access_refused(*, channel: str, reason: str, source: str, target: str = "") -> None:
    """Journal one refusal. `source`: the client address or `chat:user`; `target`: the path or
    command that was refused (clipped, printable)."""
    from core.models import AccessRefusal

    source, target = _clip(source or "unknown", 100), _clip(target, 200)
    key = (channel, reason, source)
    now_s = time.monotonic()
    with _lock:
        last_write_s, folded = _pending.get(key, (None, 0))
        if last_write_s is not None and now_s - last_write_s < WRITE_EVERY_S:
            _pending[key] = (last_write_s, folded + 1)
            return
        if len(_pending) >= MAX_TRACKED:
            _pending.clear()
        _pending[key] = (now_s, 0)
    count = folded + 1
    logger.warning(
        "access_refused channel=%s reason=%s source=%s target=%s count=%d",
        channel,
        reason,
        source,
        target,
        count,
    )
    now = timezone.now()
    try:
        updated = AccessRefusal.objects.filter(
            channel=channel, reason=reason, source=source, first_at__gte=now - ROW_SPAN
        ).update(count=F("count") + count, last_at=now)
        if not updated:
            AccessRefusal.objects.create(
                first_at=now,
                last_at=now,
                channel=channel,
                reason=reason,
                source=source,
                target=target,
                count=count,
            )
    except Exception as error:  # the refusal stands whatever the journal does
        logger.error("access_refusal_not_journaled error=%s", type(error).__name__)


def access_journal_reset() -> None:
    """Forget the per-process write throttle (tests: each starts with a clean slate)."""
    with _lock:
        _pending.clear()
