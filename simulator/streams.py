"""Websocket connections and topic fan-out.

Each connection gets an unbounded send queue drained by its own writer task, so a
publisher (a fill, a replay step) never waits on a slow client, and a message is
serialised once for all its subscribers.
"""

import asyncio
import itertools
import json

from aiohttp import web

PUBLIC = "public"
PRIVATE = "private"
BINANCE = "binance"

_ids = itertools.count(1)


def dumps(message) -> str:
    return json.dumps(message, separators=(",", ":"))


class Connection:
    __slots__ = (
        "ws",
        "transport",
        "kind",
        "path",
        "conn_id",
        "topics",
        "api_key",
        "queue",
        "writer",
        "dcp",
        "symbols",
        "combined",
    )

    def __init__(self, ws: web.WebSocketResponse, transport, kind: str, path: str) -> None:
        self.ws = ws
        self.transport = transport
        self.kind = kind
        self.path = path
        self.conn_id = f"sim-{next(_ids)}"
        self.topics: set[str] = set()
        self.api_key: str | None = None
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.writer: asyncio.Task | None = None
        self.dcp = False
        # Binance: None = all symbols (!forceOrder@arr), else the symbols of <s>@forceOrder streams.
        self.symbols: set[str] | None = None
        self.combined = False

    def send(self, text: str) -> None:
        self.queue.put_nowait(text)

    def send_json(self, message) -> None:
        self.queue.put_nowait(dumps(message))

    async def write_loop(self) -> None:
        ws = self.ws
        queue = self.queue
        try:
            while True:
                text = await queue.get()
                if text is None or ws.closed:
                    return
                await ws.send_str(text)
        except (ConnectionResetError, RuntimeError):
            return


class Hub:
    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self._by_topic: dict[str, set[Connection]] = {}

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        connection.writer = asyncio.get_running_loop().create_task(connection.write_loop())

    def remove(self, connection: Connection) -> None:
        self.connections.discard(connection)
        for topic in connection.topics:
            subscribers = self._by_topic.get(topic)
            if subscribers is not None:
                subscribers.discard(connection)
                if not subscribers:
                    del self._by_topic[topic]
        connection.topics.clear()
        connection.queue.put_nowait(None)

    def subscribe(self, connection: Connection, topic: str) -> None:
        connection.topics.add(topic)
        self._by_topic.setdefault(topic, set()).add(connection)

    def unsubscribe(self, connection: Connection, topic: str) -> None:
        connection.topics.discard(topic)
        subscribers = self._by_topic.get(topic)
        if subscribers is not None:
            subscribers.discard(connection)
            if not subscribers:
                del self._by_topic[topic]

    def has(self, topic: str) -> bool:
        return topic in self._by_topic

    def subscribers(self, topic: str) -> set[Connection]:
        return self._by_topic.get(topic, set())

    def publish(self, topic: str, message) -> None:
        subscribers = self._by_topic.get(topic)
        if not subscribers:
            return
        text = dumps(message)
        for connection in subscribers:
            connection.send(text)

    def topic_counts(self) -> dict[str, int]:
        return {topic: len(subscribers) for topic, subscribers in sorted(self._by_topic.items())}

    def of_kind(self, kind: str) -> list[Connection]:
        return [c for c in self.connections if c.kind == kind]

    async def drop(self, path: str, count: int) -> int:
        """Cut open connections on `path` ("*" = all); count 0 = every one of them.

        The TCP connection is aborted without a close frame, as a network failure
        would: clients see a lost connection (pybit then reconnects), not a goodbye.
        """
        targets = [c for c in self.connections if path in ("*", c.path)]
        if count:
            targets = targets[:count]
        for connection in targets:
            if connection.transport is not None:
                connection.transport.abort()
            else:
                await connection.ws.close(code=1011, message=b"dropped by /sim/fault")
        return len(targets)

    async def close_all(self) -> None:
        for connection in list(self.connections):
            await connection.ws.close(code=1001, message=b"simulator shutting down")
