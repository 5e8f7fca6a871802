"""Fixtures for the liquidation engine tests: recorded Binance payloads and a real local websocket server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.support import resources
from tests.support.engine import start_listening_engine

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


@pytest.fixture(scope="session")
def recorded_binance_lines() -> list[tuple[str, str]]:
    """Every recorded Binance forceOrder message (5,774): (file name, raw line)."""
    return resources.recorded_binance_lines()


@pytest.fixture(scope="session")
def five_symbol_lines() -> list[str]:
    """The 259 recorded messages of BTC, SOL, XRP, DOGE and ADA USDT, in time order."""
    return resources.five_symbol_lines()


@pytest.fixture
def local_server():
    """Factory: ``async with local_server(script) as server: ...``."""
    return LocalServer


# -- the engine against the simulator (end-to-end tests) ------------------------------------


@pytest.fixture
def btc_coin(db):
    from trading.models import Coin

    return Coin.objects.create(
        symbol="BTCUSDT",
        enabled=True,
        long_offset_pct=Decimal("0.5"),
        short_offset_pct=Decimal("0.5"),
        min_liquidation_usdt=Decimal("1000"),
        order_size_usdt=Decimal("100"),
        leverage=10,
        take_profit_pct=Decimal("1"),
        stop_loss_pct=Decimal("2"),
        vwap_window_minutes=60,
        entry_cooldown_seconds=0,
    )


@pytest.fixture
def engine_thread(sim, btc_coin, redis_db):
    """The engine running against the simulator, listening on every stream and for events."""
    thread = start_listening_engine(sim, redis_db)
    yield thread
    if thread.thread.is_alive():
        thread.stop()
