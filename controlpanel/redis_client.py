"""One Redis connection pool per process, from REDIS_URL."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def redis_client(url: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(
        url or settings.REDIS_URL,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
    )
