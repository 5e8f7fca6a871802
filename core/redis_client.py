"""One Redis connection pool per process, from REDIS_URL; the events channel's name."""

from __future__ import annotations

import functools

import redis
from django.conf import settings

from core import keys


@functools.cache
def redis_client(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(
        url or settings.REDIS_URL,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
    )


def events_channel() -> str:
    """The pub/sub channel of this panel's Redis database.

    Redis pub/sub ignores database numbers: without the number in the name, a test run
    on database 15 would halt a panel running on database 0 of the same server.
    """
    db = redis_client().connection_pool.connection_kwargs.get("db", 0)
    return f"{keys.EVENTS_CHANNEL_PREFIX}:{db}"
