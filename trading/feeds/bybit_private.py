"""Bybit V5 private stream: our positions, orders and wallet, for the engine."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from trading.events import MalformedMessage
from trading.feeds.bybit import BybitPublicFeed
from trading.feeds.connection import excerpt
from trading.feeds.parsing import load_json_object

logger = logging.getLogger("trading.feeds")  # the package's one logger name, see connection.py

BYBIT_PRIVATE_TOPICS = ("position", "order", "wallet")
DCP_TOPIC = "dcp.future"


class BybitPrivateFeed(BybitPublicFeed):
    """Bybit V5 private stream (``/v5/private``): our positions, orders and wallet as they change.

    Authenticates on every connection (``{"op": "auth", "args": [key, expires, signature]}``,
    signature = HMAC-SHA256 of ``"GET/realtime" + expires``), then subscribes
    ``position``, ``order`` and ``wallet``. Each data message calls
    ``on_update(topic, rows)`` with the raw ``data`` list; the engine parses the rows
    with the gateway's parsers, the same ones its REST reconciliation uses.
    """

    name = "bybit_private"

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        api_secret: str,
        on_update: Callable[[str, list[dict[str, Any]]], None],
        auth_expiry_ms: int = 10_000,
        disconnect_cancel_all: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(url, symbols=(), **options)
        self._api_key = api_key
        self._api_secret = api_secret.encode()
        self.on_update = on_update
        self.auth_expiry_ms = auth_expiry_ms
        self.disconnect_cancel_all = disconnect_cancel_all

    def topics(self) -> set[str]:
        topics = set(BYBIT_PRIVATE_TOPICS)
        if self.disconnect_cancel_all:
            # Bybit's DCP only watches connections subscribed to dcp.future: without it,
            # losing this connection would never cancel our resting orders.
            topics.add(DCP_TOPIC)
        return topics

    def _auth_message(self) -> str:
        expires = int(time.time() * 1000) + self.auth_expiry_ms
        signature = hmac.new(self._api_secret, f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
        return json.dumps({"op": "auth", "args": [self._api_key, expires, signature]})

    async def _on_open(self, ws: ClientConnection) -> None:
        await ws.send(self._auth_message())
        # The answer must come before subscribing: a refused key would otherwise
        # look like a quiet account. Other frames cannot arrive before auth.
        answer = load_json_object(await asyncio.wait_for(ws.recv(), timeout=self.open_timeout_s))
        if answer.get("op") != "auth" or answer.get("success") is not True:
            self.stats.subscribe_failures += 1
            logger.error("feed_auth_failed feed=%s ret_msg=%s", self.name, excerpt(answer.get("ret_msg")))
            raise ConnectionClosed(None, None)
        await super()._on_open(ws)

    def _handle_data(self, message: dict[str, Any]) -> None:
        topic = message.get("topic")
        rows = message.get("data")
        if type(topic) is not str or type(rows) is not list:
            raise MalformedMessage("unexpected_private_message")
        if topic == DCP_TOPIC:
            return  # DCP status pushes: the subscription itself is what matters
        base_topic = topic.split(".", 1)[0]
        if base_topic not in BYBIT_PRIVATE_TOPICS:
            raise MalformedMessage("unexpected_topic")
        self.stats.events += 1
        try:
            self.on_update(base_topic, rows)
        except MalformedMessage:
            raise  # a row the parsers refused: counted as a malformed frame, not a callback bug
        except Exception:
            self.stats.callback_errors += 1
            logger.exception("feed_callback_failed feed=%s", self.name)
