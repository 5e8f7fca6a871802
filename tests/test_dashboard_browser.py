"""The status page in headless Chromium, served by the real web process (daphne)."""

from __future__ import annotations

import pytest

from tests.support.browser import dashboard_page, manage, running_web

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_the_status_page_shows_the_running_web_process_after_login(tmp_path, redis_db, settings, chromium):
    with running_web(tmp_path, settings.REDIS_URL) as (base_url, env):
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.create_superuser('owner', '', 'pw-owner-1')",
        )
        page, script_errors = dashboard_page(chromium, base_url)  # a login comes first
        assert page.inner_text("#mode") == "sim"
        rows = page.locator("#processes tr").all_inner_texts()
        web_row = next(row for row in rows if row.startswith("web"))
        assert "running" in web_row, rows
        engine_row = next(row for row in rows if row.startswith("engine"))
        assert "down" in engine_row and "never" in engine_row
        assert script_errors == []
        page.screenshot(path=str(tmp_path / "status.png"))
