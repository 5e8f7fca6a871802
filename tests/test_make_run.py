"""`make run`'s launcher on a fresh copy of the tree: every process up in sim mode, Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.browser import free_port

pytestmark = pytest.mark.integration

COPY_IGNORE = shutil.ignore_patterns(
    ".venv", "var", ".env", ".git", "__pycache__", ".pytest_cache", ".hypothesis"
)


def health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_launcher_brings_every_process_up_and_ctrl_c_stops_them(tmp_path, redis_db, settings):
    tree = tmp_path / "controlpanel"
    shutil.copytree(REPO, tree, ignore=COPY_IGNORE)
    web_port, sim_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("BYBIT_", "TELEGRAM_", "EXCHANGE_", "DJANGO_", "SECRET_KEY", "CONTROL_", "DATABASE_URL")
        )
    }
    env.update(
        {
            "REDIS_URL": settings.REDIS_URL,
            "WEB_PORT": str(web_port),
            "SIM_PORT": str(sim_port),
            "SIM_BASE_URL": f"http://127.0.0.1:{sim_port}",
            "HEARTBEAT_INTERVAL_S": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
    )
    launcher = subprocess.Popen(
        [sys.executable, "-m", "controlpanel.launcher"],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{web_port}/api/health"
    status, body = 0, {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and launcher.poll() is None:
            try:
                status, body = health(url)
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert status == 200, body
        assert {p["name"] for p in body["processes"] if p["alive"]} >= {
            "web",
            "engine",
            "worker",
            "risk_worker",
            "beat",
            "sim",
        }
        env_file = (tree / ".env").read_text()
        assert "SECRET_KEY=" in env_file and "CONTROL_API_TOKEN=" in env_file
    finally:
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            output, _ = launcher.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            output, _ = launcher.communicate()
            pytest.fail("the process set did not stop within 30 s of Ctrl-C:\n" + output[-3000:])
    assert launcher.returncode == 0, "a stop the owner asked for is a clean exit"
    assert f"Dashboard: http://127.0.0.1:{web_port}/" in output
    token = next(
        line.split("=", 1)[1] for line in env_file.splitlines() if line.startswith("CONTROL_API_TOKEN=")
    )
    assert f"CONTROL_API_TOKEN={token}" in output, "the new token is printed once"
    for name in ("web", "engine", "riskwatch", "worker", "risk_worker", "beat", "sim"):
        assert f"{name}.1 stopped" in output, output[-3000:]


def test_a_taken_port_stops_the_launcher_before_anything_starts_and_names_the_variable(tmp_path):
    tree = tmp_path / "controlpanel"
    shutil.copytree(REPO, tree, ignore=COPY_IGNORE)
    sim_port = free_port()
    with socket.socket() as squatter:  # another program on the web port
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        web_port = squatter.getsockname()[1]
        env = {key: value for key, value in os.environ.items() if not key.startswith(("EXCHANGE_", "REDIS_"))}
        env.update(
            {"WEB_PORT": str(web_port), "SIM_PORT": str(sim_port), "REDIS_URL": "redis://127.0.0.1:1/0"}
        )
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "controlpanel.launcher"],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1 and time.monotonic() - started < 30
    assert f"WEB_PORT: port {web_port} on 127.0.0.1 is in use" in result.stderr
    assert f"put WEB_PORT={web_port + 10} in .env" in result.stderr
    assert "SIM_PORT" not in result.stderr  # that one is free
    assert "Dashboard:" not in result.stderr and not (tree / "var" / "celerybeat-schedule").exists()
