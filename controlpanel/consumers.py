"""The live dashboard's websocket (``/ws/dashboard/``): pushes, never commands.

Who gets in: ``controlpanel.asgi`` has already refused clients outside
ALLOWED_CLIENT_NETWORKS and foreign origins, and loaded the session's user; this
consumer takes only an authenticated, active staff user (the dashboard's own rule),
and checks again on every push, so a logout or a revoked staff flag ends the feed.

What it sends (JSON, ``type`` first):
- ``state`` on connect: everything the first paint had (``dashboard_initial``), so a
  reconnect after a gap leaves nothing stale;
- ``snapshot`` every DASHBOARD_PUSH_INTERVAL_S: account, daily PnL, IM %, lock, health,
  engine figures, the newest equity sample, and journal rows of the other strategies
  (risk, portfolio, panic) written since the last push;
- ``decisions`` and ``liquidations`` as the engine publishes them to the ``dashboard``
  group (with each journal flush, every 0.5 s at most).
"""

from __future__ import annotations

import asyncio
import logging
from importlib import import_module

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.utils import timezone

from controlpanel.dashboard import dashboard_initial, dashboard_snapshot, decisions_after
from core import keys

logger = logging.getLogger(__name__)

REFUSED = 4403  # a close code in the application range: "forbidden"


def _staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.pusher: asyncio.Task | None = None
        self.joined = False
        if not _staff(self.scope.get("user")):
            await self.close(code=REFUSED)
            return
        await self.channel_layer.group_add(keys.DASHBOARD_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        # Joined before the first read, so nothing the engine pushes from here on is missed
        # (a row in both is shown once: the page drops duplicates).
        initial = await database_sync_to_async(dashboard_initial)(now=timezone.now())
        self.last_decision_id = initial["last_decision_id"]
        await self.send_json({"type": "state", **initial})
        self.pusher = asyncio.create_task(self._push_forever())

    async def disconnect(self, code):
        if self.pusher is not None:
            self.pusher.cancel()
        if self.joined:
            await self.channel_layer.group_discard(keys.DASHBOARD_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """The page sends nothing that matters; commands go through the HTTP forms (CSRF)."""

    # -- the periodic push --------------------------------------------------------------

    async def _push_forever(self) -> None:
        interval_s = settings.DASHBOARD_PUSH_INTERVAL_S
        while True:
            await asyncio.sleep(interval_s)
            try:
                message = await database_sync_to_async(self._snapshot)()
            except Exception as error:  # a locked database or Redis blip: skip one push, not the feed
                logger.warning("dashboard_push_failed error=%s", type(error).__name__)
                continue
            if message is None:
                await self.close(code=REFUSED)
                return
            await self.send_json(message)

    def _snapshot(self) -> dict | None:
        """In a thread: the live figures, or None when the session no longer grants access."""
        if not self._still_allowed():
            return None
        message = {"type": "snapshot", **dashboard_snapshot(now=timezone.now())}
        decisions = decisions_after(after_id=self.last_decision_id)
        if decisions:
            self.last_decision_id = decisions[0]["id"]
        message["decisions"] = decisions
        return message

    def _still_allowed(self) -> bool:
        """The session still logs this user in (not logged out, not expired), and the user is
        still active staff. A fresh load: the scope's session object caches what it read."""
        session, user = self.scope.get("session"), self.scope.get("user")
        if session is None or not session.session_key:
            return False
        stored = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session.session_key).load()
        if stored.get(SESSION_KEY) != str(user.pk):
            return False
        return get_user_model().objects.filter(pk=user.pk, is_active=True, is_staff=True).exists()

    # -- group messages from the engine (trading.engine_runner) -----------------------------

    async def journal_decisions(self, event):
        await self.send_json({"type": "decisions", "decisions": event["decisions"]})

    async def liquidations(self, event):
        await self.send_json({"type": "liquidations", "liquidations": event["liquidations"]})
