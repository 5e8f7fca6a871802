"""The one exchange gateway of a Celery worker process, shared by every task in it."""

from __future__ import annotations

import threading

_gateway = None
_gateway_lock = threading.Lock()


def worker_gateway():
    """One prepared gateway per worker process, built on first use.

    Built lazily, after the prefork pool has forked, so no two processes share an
    HTTP session. A gateway whose ``prepare()`` failed is not kept.
    """
    global _gateway
    if _gateway is None:
        with _gateway_lock:
            if _gateway is None:
                from trading.bybit import BybitGateway

                gateway = BybitGateway.from_settings()
                gateway.prepare()
                _gateway = gateway
    # Bybit revises lot filters twice a month and lists symbols any day: reload once a day.
    _gateway.instruments.refresh_if_stale()
    return _gateway
