"""The dashboard's websocket stays connected: a page left open for a minute, served by the
real web process (daphne) on a real Redis, never drops, and the server logs no error."""

from __future__ import annotations

import time

import pytest

from tests.support.browser import dashboard_page, running_web

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

OWNER = (
    "from django.contrib.auth.models import User; User.objects.create_superuser('owner', '', 'pw-owner-1')"
)
OPEN_FOR_S = 60


def test_a_dashboard_left_open_for_a_minute_stays_connected(tmp_path, settings, redis_db, chromium):
    with running_web(tmp_path, settings.REDIS_URL, setup=(OWNER,)) as (base_url, _env):
        opened, closed = [], []

        def track(ws):
            opened.append(ws.url)
            ws.on("close", lambda _: closed.append(ws.url))

        page, errors = dashboard_page(chromium, base_url, on={"websocket": track})
        page.wait_for_function("document.getElementById('live-status').textContent === 'live'")

        deadline = time.monotonic() + OPEN_FOR_S
        while time.monotonic() < deadline:
            page.wait_for_timeout(1000)

        assert page.inner_text("#live-status") == "live"
        assert (len(opened), closed, errors) == (1, [], [])
    log = (tmp_path / "web.log").read_text(errors="replace")
    assert "ERROR" not in log and "Traceback" not in log, log[-3000:]
