"""The README's and the beginner's guide's shell commands, run as a reader runs them: in a
second terminal, beside a running `make run`, on a machine without a Redis of its own.

One launcher serves the module (a copy of the tree on free ports, `.env` copied from
`.env.example` as a beginner would, `REDIS_URL` pointing where nothing answers, so the
launcher starts its embedded Redis). Every fenced `sh`/`bash`/`shell`/`console` block of
README.md and BEGINNER_GUIDE.md (whatever they say today: blocks are found, not listed)
runs with bash from the tree's folder; a non-zero exit or a traceback fails it. The blocks
that cannot run here are skipped by the rules in SKIP_RULES, each with its reason, so
`pytest -rs` lists every skipped block and why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from controlpanel.redis_boot import launcher_redis_url
from core import keys
from tests.support import REPO
from tests.support.browser import free_port
from tests.test_make_run import COPY_IGNORE, health

pytestmark = pytest.mark.integration

DOCUMENTS = ("README.md", "BEGINNER_GUIDE.md")
SHELL_LANGUAGES = {"sh", "bash", "shell", "console", "zsh"}

# (pattern, why the block cannot run here). A block that matches any is skipped, with every reason.
SKIP_RULES = [
    (
        r"\b(sudo|apt|apt-get|brew|pyenv|add-apt-repository|winget|wsl)\b|\bgit clone\b|\bpip install\b",
        "installs software or downloads the project (root, the internet)",
    ),
    (r"\bdocker\b", "needs Docker"),
    (r"\bsimulator\.record\b", "records live exchange streams from the internet"),
    (r"\bmake bench\b|\bbench\.replay_report\b", "a benchmark: minutes of CPU at maximum replay speed"),
    (r"\bmake (test|lint)\b", "the developer's test suite and linters (CI runs them)"),
    (r"\bmake chaos\b", "minutes of the whole system under faults (tests/chaos runs a short one)"),
    (r"\bmake run\b", "starts make run, which this test already runs beside the blocks"),
    (r"\b(nano|vim?|code|open|notepad)\s+\S*\.env\b|>\s*\.env\b|\bcp\s+\S+\s+\.env\b", "edits .env by hand"),
    (r"^\s*cd\s", "changes into a clone of the repository (this test runs inside one)"),
    (r"\b(changepassword|createsuperuser)\b", "interactive: asks for a password"),
    (r"api\.telegram\.org|@BotFather", "talks to Telegram"),
    (r"<[^<>\s]+>", "has a placeholder (<...>) the reader replaces with their own value"),
]


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    language: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"

    def script(self) -> str:
        """The commands: a console block's `$ ` lines (its other lines are output)."""
        if self.language != "console":
            return self.text
        return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ "))

    def skip_reason(self) -> str | None:
        reasons = [
            reason for pattern, reason in SKIP_RULES if re.search(pattern, self.script(), re.MULTILINE)
        ]
        return "; ".join(reasons) or None


def shell_blocks(document: str) -> list[Block]:
    """Every fenced shell block of a Markdown file, with the line its fence opens on."""
    blocks, lines = [], (REPO / document).read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^\s*(`{3,})\s*([\w-]*)", lines[index])
        if not opening:
            index += 1
            continue
        fence, language, start = opening.group(1), opening.group(2).lower(), index
        index += 1
        body = []
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        index += 1
        if language in SHELL_LANGUAGES:
            indent = min((len(line) - len(line.lstrip()) for line in body if line.strip()), default=0)
            blocks.append(Block(document, start + 1, language, "\n".join(line[indent:] for line in body)))
    return blocks


BLOCKS = [block for document in DOCUMENTS for block in shell_blocks(document)]


def test_the_documents_have_shell_blocks_and_most_of_them_run_here():
    """The block finder works on today's documents (a test that finds nothing checks nothing)."""
    readme = [block for block in BLOCKS if block.document == "README.md"]
    assert len(readme) >= 8, [block.id for block in BLOCKS]
    runnable = [block for block in BLOCKS if block.skip_reason() is None]
    assert any("import_config" in block.text for block in runnable)
    assert any("manage.py panic" in block.text for block in runnable)
    assert len(runnable) >= 6, [(block.id, block.skip_reason()) for block in BLOCKS]


def test_the_skip_rules_skip_what_cannot_run_here_and_nothing_else():
    def reason(text: str, language: str = "sh") -> str | None:
        return Block("x.md", 1, language, text).skip_reason()

    assert "make run" in reason("SIM_SPEED=10 make run")
    assert "installs" in reason("sudo apt install python3.11 python3.11-venv")
    assert "edits .env" in reason("nano .env") and "edits .env" in reason("cp .env.example .env")
    assert "placeholder" in reason('curl -H "Authorization: Bearer <token>" http://127.0.0.1:8000/panic')
    assert reason(".venv/bin/python manage.py export_config --out backup/") is None
    assert reason("curl -s -X POST http://127.0.0.1:8000/panic  # 2>&1 > out") is None
    assert reason("$ python3 --version\nPython 3.11.7", language="console") is None


# -- beside a running launcher -------------------------------------------------------------


@dataclass
class Launched:
    tree: Path
    env: dict[str, str]
    web_port: int
    redis: redis.Redis

    def run(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=self.tree,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def events(self):
        pubsub = self.redis.pubsub()
        pubsub.subscribe(f"{keys.EVENTS_CHANNEL_PREFIX}:0")
        pubsub.get_message(timeout=2)  # the subscription's confirmation
        return pubsub


def messages(pubsub, *, wait_s: float = 5) -> list[dict]:
    found, deadline = [], time.monotonic() + wait_s
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None:
            found.append(json.loads(message["data"]))
        elif found:
            break
    return found


def reader_environment(tree: Path) -> dict[str, str]:
    """A reader's terminal: none of the test run's settings, only what .env says."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("BYBIT_", "TELEGRAM_", "EXCHANGE_", "DJANGO_", "SECRET_KEY", "CONTROL", "REDIS_", "SIM_", "WEB_")
        )
        and key not in ("TEST_REDIS_URL", "DATABASE_URL", "HEARTBEAT_INTERVAL_S", "LOG_LEVEL", "VIRTUAL_ENV")
    }
    # curl answers an HTTP error with exit 0; the reader would see the error, so must the test.
    curl_home = tree / "var" / "curl-home"
    curl_home.mkdir(parents=True, exist_ok=True)
    (curl_home / ".curlrc").write_text("fail-with-body\n")
    env["CURL_HOME"] = str(curl_home)
    return env


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    tree = tmp_path_factory.mktemp("beginner") / "controlpanel"
    shutil.copytree(REPO, tree, ignore=COPY_IGNORE)
    (tree / ".venv").symlink_to((REPO / ".venv").resolve())
    (tree / "var").mkdir()
    web_port, sim_port, redis_port, nobody = free_port(), free_port(), free_port(), free_port()
    # A beginner's .env: a copy of .env.example (its SECRET_KEY= is empty) and the ports.
    # Nothing answers at REDIS_URL, as on a machine without a Redis of its own: make run
    # starts its embedded Redis, and the commands below must find it.
    (tree / ".env").write_text(
        (REPO / ".env.example").read_text()
        + f"\nWEB_PORT={web_port}\nSIM_PORT={sim_port}\nREDIS_URL=redis://127.0.0.1:{nobody}/0\n"
        f"REDIS_EMBEDDED_PORT={redis_port}\nHEARTBEAT_INTERVAL_S=1\n"
    )
    # The reader's old bots' files, for the import_config commands.
    for name in ("coins.json", "settings.json", "allowlist_updated.json"):
        shutil.copy(REPO / "controlpanel" / "demo" / name, tree / name)
    env = reader_environment(tree)
    launcher = subprocess.Popen(
        [str(tree / ".venv" / "bin" / "python"), "-m", "controlpanel.launcher"],
        cwd=tree,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    status, body = 0, {}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and launcher.poll() is None:
            try:
                status, body = health(f"http://127.0.0.1:{web_port}/api/health")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        if status != 200:
            os.killpg(launcher.pid, signal.SIGKILL)
            pytest.fail(f"the launcher did not come up: {body}\n{launcher.communicate()[0][-4000:]}")
        embedded = f"redis://127.0.0.1:{redis_port}/0"
        assert (
            launcher_redis_url(f"redis://127.0.0.1:{nobody}/0", path=tree / "var" / "redis-url.json")
            == embedded
        )
        yield Launched(tree=tree, env=env, web_port=web_port, redis=redis.Redis.from_url(embedded))
    finally:
        try:
            os.killpg(launcher.pid, signal.SIGINT)  # Ctrl-C
            output, _ = launcher.communicate(timeout=30)
        except ProcessLookupError:  # already gone (it did not come up)
            output = ""
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            output, _ = launcher.communicate()
    assert not (tree / "var" / "redis-url.json").exists(), "the record goes with the launcher"
    assert "Demo coins disabled" not in output and "7 coins marked demo trade in the simulator" in output


def assert_clean(result: subprocess.CompletedProcess, what: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{what}: exit {result.returncode}\n{output[-4000:]}"
    assert "Traceback" not in output, f"{what}: a traceback\n{output[-4000:]}"


def test_the_empty_secret_key_of_env_example_was_generated(launched):
    values = dict(
        line.split("=", 1) for line in (launched.tree / ".env").read_text().splitlines() if "=" in line
    )
    assert len(values["SECRET_KEY"]) > 40 and len(values["CONTROL_API_TOKEN"]) > 30


def test_import_config_beside_the_launcher_saves_and_tells_the_engine(launched):
    pubsub = launched.events()
    result = launched.run(
        ".venv/bin/python manage.py import_config --coins coins.json --settings settings.json "
        "--allowlist allowlist_updated.json"
    )
    assert_clean(result, "import_config")
    assert "updated: coin BTCUSDT" in result.stdout
    assert "config_change_not_published" not in result.stderr
    assert {"type": "config"} in messages(pubsub), "the engine's channel got the notice"
    pubsub.close()


def test_manage_py_panic_beside_the_launcher_locks_the_engine_at_once(launched):
    pubsub = launched.events()
    result = launched.run('.venv/bin/python manage.py panic --reason "beside make run"')
    assert_clean(result, "manage.py panic")
    published = [m for m in messages(pubsub) if m["type"] == "trading_state"]
    assert published and published[0]["panic_locked"] is True, published
    assert json.loads(launched.redis.get(keys.TRADING_STATE))["panic_reason"] == "beside make run"
    assert "panic_lock_not_published" not in result.stderr
    result = launched.run(".venv/bin/python manage.py panic --reset")
    assert_clean(result, "manage.py panic --reset")
    assert json.loads(launched.redis.get(keys.TRADING_STATE))["panic_locked"] is False
    pubsub.close()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_the_documents_shell_block_runs_beside_the_launcher(launched, block):
    reason = block.skip_reason()
    if reason:
        pytest.skip(f"{block.id}: {reason}")
    # The documents say 127.0.0.1:8000; this launcher listens on a free port.
    script = re.sub(r"(127\.0\.0\.1|localhost):8000\b", rf"\g<1>:{launched.web_port}", block.script())
    assert_clean(launched.run(script), f"{block.id}\n{script}")
