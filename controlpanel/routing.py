"""Websocket routes (mounted in controlpanel.asgi behind the network, origin and session checks)."""

from django.urls import path

from controlpanel.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
]
