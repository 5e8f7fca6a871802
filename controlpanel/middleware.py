"""Refuse clients outside ALLOWED_CLIENT_NETWORKS (loopback only by default).

This sits first in the stack, before sessions or auth touch the request: the panel,
the admin, the API and the panic endpoints move money, and by default only this
machine may reach them. Behind a reverse proxy REMOTE_ADDR is the proxy; the
README says to keep the proxy on this machine and do auth there too.

Websockets never pass through Django's middleware, so the same check has an ASGI
twin (``WebsocketClientNetworkMiddleware``), outermost in ``controlpanel.asgi``.
"""

from __future__ import annotations

import ipaddress

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http import HttpResponseForbidden

from core.access import access_refused


def client_allowed(address: str | None) -> bool:
    if not address:
        return False
    try:
        client = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    return any(client in network for network in settings.ALLOWED_CLIENT_NETWORKS)


class ClientNetworkMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # REMOTE_ADDR only: X-Forwarded-For and friends are whatever the client wrote.
        address = request.META.get("REMOTE_ADDR")
        if not client_allowed(address):
            access_refused(channel="http", reason="client_network", source=address or "", target=request.path)
            return HttpResponseForbidden(
                "This control panel only answers clients in ALLOWED_CLIENT_NETWORKS.",
                content_type="text/plain",
            )
        return self.get_response(request)


class WebsocketClientNetworkMiddleware:
    """ASGI: refuse a websocket handshake from outside ALLOWED_CLIENT_NETWORKS (HTTP 403 from
    daphne), before the session or the consumer are touched. ``scope["client"]`` is
    ``[host, port]``, or None (a unix socket): no address, no entry."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            client = scope.get("client")
            address = client[0] if client else None
            if not client_allowed(address):
                await database_sync_to_async(access_refused)(
                    channel="websocket",
                    reason="client_network",
                    source=address or "",
                    target=scope.get("path", ""),
                )
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
