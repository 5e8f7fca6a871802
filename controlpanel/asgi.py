"""ASGI entry point for daphne: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from controlpanel.middleware import WebsocketClientNetworkMiddleware  # noqa: E402
from controlpanel.routing import websocket_urlpatterns  # noqa: E402
from core.heartbeat import heartbeat_start  # noqa: E402

# Websockets, outside in: the client network (as for HTTP), the Origin (no other site's
# page may open our socket with the user's cookie), the session's user; each consumer
# then refuses anyone but an authenticated staff user.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketClientNetworkMiddleware(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Only the web process beats as "web"; importing this module elsewhere (tests, tools) must not.
if os.environ.get("CONTROLPANEL_PROCESS") == "web":
    heartbeat_start("web")
