"""The database gone, for tests of what must still work without it."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connections

from core.models import TradingState


@contextmanager
def database_down():
    """Every new connection to the database fails ("unable to open database file"), as when its
    server is gone. Connections are opened per thread and closed after each bridge or task call,
    so the code under test meets the failure; the test's own connection, opened here first,
    stays open, so the test database survives."""
    TradingState.objects.count()
    settings_dict = connections["default"].settings_dict  # shared by every thread's connection
    name = settings_dict["NAME"]
    settings_dict["NAME"] = "/nonexistent-directory/controlpanel.sqlite3"
    try:
        yield
    finally:
        settings_dict["NAME"] = name
