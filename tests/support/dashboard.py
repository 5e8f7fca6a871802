"""The dashboard's websocket from the test side: a logged-in session, a connection through the
project's real ASGI stack (network check, origin check, session, consumer), and its messages."""

from __future__ import annotations

import asyncio

from channels.testing import WebsocketCommunicator

LOOPBACK = ("127.0.0.1", 50000)


def session_cookie(client, user) -> str:
    client.force_login(user)
    return client.cookies["sessionid"].value


def communicator(
    *, cookie: str | None = None, client=LOOPBACK, origin: str = "http://127.0.0.1"
) -> WebsocketCommunicator:
    """A websocket to /ws/dashboard/ through controlpanel.asgi, from ``client`` (host, port)."""
    from controlpanel.asgi import application

    async def from_client(scope, receive, send):
        return await application({**scope, "client": client}, receive, send)

    headers = [(b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(from_client, "/ws/dashboard/", headers=headers)


async def receive_type(ws: WebsocketCommunicator, wanted: str, timeout_s: float = 5.0) -> dict:
    """The next message of type ``wanted``, skipping the others (periodic snapshots)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        remaining = deadline - loop.time()
        assert remaining > 0, f"no {wanted!r} message within {timeout_s} s"
        message = await ws.receive_json_from(timeout=remaining)
        if message["type"] == wanted:
            return message
