"""The "Last alerts" block in headless Chromium, served by the real web process (daphne) on
a real Redis: the first paint lists what core.alerts recorded, a new alert arrives with the
next push, without a reload."""

from __future__ import annotations

import threading

import pytest

from core import alerts
from tests.support.browser import dashboard_page, running_web

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def send(text: str, kind: str) -> str:
    """alert_send from a thread of its own: Playwright's sync API runs an event loop in this
    one, where Django refuses ORM calls (the alert would fall back to unlimited delivery)."""
    box = {}
    thread = threading.Thread(target=lambda: box.update(decision=alerts.alert_send(text, kind=kind)))
    thread.start()
    thread.join(timeout=10)
    return box["decision"]


SEED = "from django.contrib.auth.models import User; User.objects.create_superuser('owner', '', 'pw-owner-1')"


def test_the_last_alerts_show_and_update_live(tmp_path, settings, redis_db, chromium, monkeypatch):
    monkeypatch.setattr(alerts, "_senders", {})  # listed here; Telegram has its own tests
    assert send("Bybit refused the API keys (retCode 10003).", "auth_error") == "delivered"
    assert send("Bybit refused the API keys (retCode 10003).", "auth_error") == "folded"

    with running_web(tmp_path, settings.REDIS_URL, setup=(SEED,), DASHBOARD_PUSH_INTERVAL_S="0.5") as (
        base_url,
        _env,
    ):
        page, script_errors = dashboard_page(chromium, base_url)

        kinds = page.locator("#alerts-body td:nth-child(2)").all_inner_texts()
        statuses = page.locator("#alerts-body td:nth-child(3)").all_inner_texts()
        assert (kinds, statuses) == (["auth_error", "auth_error"], ["folded", "delivered"])
        page.wait_for_function("document.getElementById('live-status').textContent === 'live'")
        page.evaluate("window.notReloaded = true")

        send("engine is missing its heartbeat: last seen 45 s ago.", "heartbeat_missing")
        page.wait_for_selector("#alerts-body >> text=engine is missing its heartbeat", timeout=5000)
        first = page.locator("#alerts-body tr").first.locator("td").all_inner_texts()
        assert first[1:] == [
            "heartbeat_missing",
            "delivered",
            "engine is missing its heartbeat: last seen 45 s ago.",
        ]
        assert page.evaluate("window.notReloaded") is True
        assert script_errors == []
