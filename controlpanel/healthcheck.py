"""`python -m controlpanel.healthcheck NAME`: exit 0 while process NAME's heartbeat is fresh.

For container healthchecks (docker-compose.yml): each container checks its own
process through the same Redis heartbeat the dashboard shows.
"""

from __future__ import annotations

import json
import os
import sys
import time

import redis

from core import keys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m controlpanel.healthcheck PROCESS", file=sys.stderr)
        return 2
    name = argv[1]
    timeout_s = float(os.environ.get("HEARTBEAT_TIMEOUT_S", "20"))
    try:
        client = redis.Redis.from_url(
            os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            socket_connect_timeout=2,
            socket_timeout=2,
        )
        raw = client.hget(keys.HEARTBEATS, name)
    except redis.RedisError as error:
        print(f"{name}: redis unavailable ({type(error).__name__})", file=sys.stderr)
        return 1
    if raw is None:
        print(f"{name}: no heartbeat yet", file=sys.stderr)
        return 1
    age = time.time() - float(json.loads(raw)["ts"])
    if age >= timeout_s:
        print(f"{name}: last heartbeat {age:.0f} s ago", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
