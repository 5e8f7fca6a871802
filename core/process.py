"""Run an asyncio process (engine, telegram) with a heartbeat and a clean stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from core.heartbeat import heartbeat_forever

logger = logging.getLogger(__name__)


async def run_process(name: str, main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` beside the heartbeat; a signal sets `stop`, and both finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logger.info("process_started name=%s", name)
    heartbeat = asyncio.create_task(heartbeat_forever(name, stop))
    try:
        await main(stop)
    finally:
        stop.set()
        await heartbeat
        logger.info("process_stopped name=%s", name)


def orm_call(function, *args, **kwargs):
    """Run an ORM call from a worker thread (``asyncio.to_thread``) on a healthy connection:
    a connection the database closed meanwhile is replaced, and none is left open after."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        close_old_connections()


async def every(
    interval_s: float, stop: asyncio.Event, action: Callable[[], Awaitable[object]], *, name: str
) -> None:
    """Run ``action()`` every ``interval_s`` until ``stop`` is set (not at once: the caller has
    just done the same work on its way up). A failure is one warning line, ``<name>_failed``
    with the error's type and venue code, and the next round comes as usual; an error without
    a venue code (not the exchange's answer: a bug, the database) carries its traceback."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
            return
        except TimeoutError:
            pass
        try:
            await action()
        except Exception as error:
            logger.warning(
                "%s_failed error=%s code=%s",
                name,
                type(error).__name__,
                getattr(error, "code", None),
                exc_info=not hasattr(error, "code"),
            )
