"""Fixtures for the liquidation engine tests: recorded payloads and a real local websocket server."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

RESOURCES = Path(__file__).parent / "resources"
FIVE_SYMBOLS = RESOURCES / "binance_force_order_2025-01-27_5_symbols.jsonl"


def _recorded_binance_lines() -> list[tuple[str, str]]:
    rows = [(FIVE_SYMBOLS.name, line) for line in FIVE_SYMBOLS.read_text().splitlines() if line.strip()]
    for path in sorted(RESOURCES.glob("binance_force_order_*_all-symbols.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            rows.extend((path.name, line.rstrip("\n")) for line in handle if line.strip())
    return rows


Script = Callable[[ServerConnection, int], Awaitable[None]]


class LocalServer:
    """A real ``websockets`` server on 127.0.0.1 whose behaviour per connection is a test's script.

    ``script(ws, n)`` runs for the n-th connection (1-based); returning closes it
    normally. ``received`` holds every text frame the clients sent, per connection.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.received: dict[int, list[str]] = {}
        self.connected = asyncio.Event()
        self._server = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/market/ws/!forceOrder@arr"

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        number = self.connections
        self.received[number] = []
        self.connected.set()
        await self.script(ws, number)

    async def __aenter__(self) -> LocalServer:
        self._server = await serve(self._handler, "127.0.0.1", 0, compression=None, close_timeout=0.5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._server.close()
        await self._server.wait_closed()


async def until(condition: Callable[[], bool], timeout_s: float = 5.0, step_s: float = 0.01) -> None:
    """Wait until ``condition()`` holds; fail the test after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step_s)


@pytest.fixture(scope="session")
def recorded_binance_lines() -> list[tuple[str, str]]:
    """Every recorded Binance forceOrder message (5,774): (file name, raw line)."""
    return _recorded_binance_lines()


@pytest.fixture(scope="session")
def five_symbol_lines() -> list[str]:
    """The 259 recorded messages of BTC, SOL, XRP, DOGE and ADA USDT, in time order."""
    return [line for line in FIVE_SYMBOLS.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def resource_json():
    """Factory: the parsed JSON of a file in resources/."""

    def load(name: str) -> dict:
        return json.loads((RESOURCES / name).read_text())

    return load


@pytest.fixture(scope="session")
def resource_path():
    return lambda name: RESOURCES / name


@pytest.fixture
def local_server():
    """Factory: ``async with local_server(script) as server: ...``."""
    return LocalServer


@pytest.fixture
def wait_until():
    """``await wait_until(lambda: ..., timeout_s=5)``."""
    return until
