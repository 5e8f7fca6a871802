"""The status page's panic and reset buttons in headless Chromium, served by daphne, on the simulator."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager

import pytest

from tests.browser import CHROMIUM_FLAGS, REPO, chromium_path, free_port, manage, process_env, wait_for_http
from tests.panic.conftest import open_orders_on_exchange

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def chromium():
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@contextmanager
def web_on_the_simulator(tmp_path, redis_url, sim):
    """daphne on a fresh database, its gateway pointed at the test's simulator."""
    env = process_env(
        tmp_path / "web.sqlite3",
        REDIS_URL=redis_url,
        CONTROLPANEL_PROCESS="web",
        SIM_BASE_URL=sim.base_url,
        SIM_API_KEY=sim.api_key,
        SIM_API_SECRET=sim.api_secret,
    )
    manage(env, "migrate", "--noinput", "-v0")
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.create_superuser('owner', '', 'pw-owner-1')",
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "controlpanel.asgi:application",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_panic_button_flattens_the_account_and_the_reset_button_lifts_the_lock(
    tmp_path, redis_db, settings, sim, open_book, chromium
):
    with web_on_the_simulator(tmp_path, settings.REDIS_URL, sim) as base_url:
        page = chromium.new_page()
        page.goto(base_url + "/")
        page.fill("#id_username", "owner")
        page.fill("#id_password", "pw-owner-1")
        page.click("input[type=submit]")
        page.wait_for_url(base_url + "/")
        assert page.inner_text("#panic-state") == "Not locked."

        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        page.fill("#panic-form input[name=reason]", "browser drill")
        page.click("#panic-button")
        page.wait_for_selector("#messages")

        assert dialogs and dialogs[0].startswith("PANIC:")  # the button asks first
        assert "account FLAT, verified on the exchange" in page.inner_text("#messages")
        assert page.inner_text("#panic-state").startswith("LOCKED since")
        assert "browser drill" in page.inner_text("#panic-state")
        assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
        page.screenshot(path=str(tmp_path / "panic.png"))

        page.click("#panic-reset-button")
        page.wait_for_selector("#messages >> text=Panic lock lifted")
        assert page.inner_text("#panic-state") == "Not locked."
        assert page.locator("#panic-reset-button").count() == 0
