"""Real processes and a real browser for page tests: daphne on a temp database, headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def process_env(database_path: Path, **extra) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlpanel.settings",
            "CONTROLPANEL_READ_DOTENV": "0",
            "SECRET_KEY": "browser-test-secret",
            "CONTROL_API_TOKEN": "browser-test-token",
            "DATABASE_URL": f"sqlite:///{database_path}",
            "EXCHANGE_MODE": "sim",
            "LIQUIDATION_FEED": "sim",
            "HEARTBEAT_INTERVAL_S": "0.5",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            **extra,
        }
    )
    for key in ("BYBIT_API_KEY", "BYBIT_API_SECRET", "TELEGRAM_BOT_TOKEN"):
        env.pop(key, None)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def wait_for_http(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@contextmanager
def running_web(tmp_path: Path, redis_url: str, *, setup: tuple[str, ...] = (), **extra_env: str):
    """daphne serving the project on a free port, on a fresh migrated SQLite database.

    `setup`: Python snippets run with `manage.py shell -c` before the server starts
    (users, seed rows); `extra_env`: more environment for the web process. The server's
    log (stderr) goes to `tmp_path / "web.log"` (a pipe nobody reads would fill and block it)."""
    env = process_env(tmp_path / "web.sqlite3", REDIS_URL=redis_url, CONTROLPANEL_PROCESS="web", **extra_env)
    manage(env, "migrate", "--noinput", "-v0")
    for snippet in setup:
        manage(env, "shell", "-c", snippet)
    port = free_port()
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 (closed below, after the server)
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
        stderr=log,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/admin/login/")  # 200 once up (/api/health would log a 503)
        yield f"http://127.0.0.1:{port}", env
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def dashboard_page(
    chromium: Browser,
    base_url: str,
    *,
    user: str = "owner",
    password: str = "pw-owner-1",
    on: Mapping[str, Callable] | None = None,
) -> tuple[Page, list[str]]:
    """A new page logged in through the admin's login form, on the dashboard.

    Returns the page and the list that collects its script errors (uncaught exceptions and
    console errors) from before the first navigation on; a test asserts it is empty.
    `on`: more page events to listen to from the start (e.g. "websocket": a handler)."""
    page = chromium.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and script_errors.append(message.text))
    for event, handler in (on or {}).items():
        page.on(event, handler)
    page.goto(base_url + "/")
    assert "/admin/login/" in page.url  # a login comes first
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(base_url + "/")
    return page, script_errors
