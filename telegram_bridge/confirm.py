"""/close and /kill ask first: the pending requests and their confirmations.

A request belongs to the user who asked, in the chat where they asked, and to one action
("close" or "kill"). It can be confirmed once, by that user in that chat, within
`CONFIRM_TTL_S`: by its inline button (whose callback data names the request) or by the
typed `/close confirm` / `/kill confirm` (which confirms the newest request of that user,
chat and action). Anything else is refused with the reason, and nothing is done.

Kept in the bridge's memory (the application's `bot_data`), not in Redis: /close must work
when Redis is down (the panic runs without it), and a bridge that restarts forgets what
was pending, which is the safe way to fail (the user asks again). PTB runs the handlers on
one event loop and `take` never awaits, so a request is taken at most once even when the
button and the typed confirmation arrive together.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

CONFIRM_TTL_S = 60.0
# Finished and expired requests are remembered this long after they expire, so a late or
# second confirmation is told why it does nothing ("expired", "already confirmed").
FORGET_AFTER_S = 600.0
CONFIRMATIONS_KEY = "confirmations"  # in `application.bot_data`

# Why a confirmation did nothing (`Confirmations.take`'s answer when it is not OK).
OK = "ok"
UNKNOWN = "unknown"  # no such request: never asked here, or the bridge restarted since
NOT_YOURS = "not_yours"  # asked by another user or in another chat
DONE = "done"  # already confirmed or cancelled
EXPIRED = "expired"
REPLACED = "replaced"  # the same user asked again since; only the newest request counts


@dataclass
class Request:
    nonce: str
    action: str
    chat_id: int
    user_id: int
    expires_at: float  # on the store's clock (time.monotonic)
    done: bool = False
    message_id: int | None = None  # the bot's question, whose buttons go once it is answered
    text: str = ""  # the question's text


class Confirmations:
    def __init__(self, *, ttl_s: float = CONFIRM_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._requests: dict[str, Request] = {}  # by nonce
        self._newest: dict[tuple[int, int, str], str] = {}  # (chat, user, action) -> nonce

    def ask(self, *, action: str, chat_id: int, user_id: int) -> Request:
        """A new request (the newest for this user, chat and action: older ones stop counting)."""
        now = self.clock()
        self._forget(now)
        request = Request(
            nonce=secrets.token_urlsafe(9),  # 12 characters; callback data may hold 64 bytes
            action=action,
            chat_id=chat_id,
            user_id=user_id,
            expires_at=now + self.ttl_s,
        )
        self._requests[request.nonce] = request
        self._newest[(chat_id, user_id, action)] = request.nonce
        return request

    def take(
        self, *, action: str, chat_id: int, user_id: int, nonce: str | None = None
    ) -> tuple[str, Request | None]:
        """Confirm (or cancel) a request: OK at most once, else why not; with the request when
        it is this user's. Without `nonce` (the typed confirmation), the newest request of
        this user, chat and action."""
        key = (chat_id, user_id, action)
        if nonce is None:
            nonce = self._newest.get(key)
        request = self._requests.get(nonce or "")
        if request is None:
            return UNKNOWN, None
        if (request.chat_id, request.user_id, request.action) != key:
            return NOT_YOURS, None
        if request.done:
            return DONE, request
        if self.clock() >= request.expires_at:
            return EXPIRED, request
        if self._newest.get(key) != nonce:
            return REPLACED, request
        request.done = True
        return OK, request

    def _forget(self, now: float) -> None:
        for nonce, request in list(self._requests.items()):
            if now >= request.expires_at + FORGET_AFTER_S:
                del self._requests[nonce]
                key = (request.chat_id, request.user_id, request.action)
                if self._newest.get(key) == nonce:
                    del self._newest[key]
