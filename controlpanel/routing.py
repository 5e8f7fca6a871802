"""Websocket routes. The live dashboard's push consumer joins here (dashboard issue)."""

websocket_urlpatterns: list = []
