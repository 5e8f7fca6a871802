"""The liquidation engine as `run_engine` runs it, for end-to-end tests against the simulator:
an EngineRunner on its own loop in a background thread, with the real gateway and feeds."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

from core.redis_client import events_channel
from tests.support.waiting import wait_until
from trading.bybit import BybitGateway
from trading.engine_runner import EngineEndpoints, EngineRunner


class EngineThread:
    """An EngineRunner on its own loop in a background thread."""

    def __init__(self, runner: EngineRunner):
        self.runner = runner
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.error: BaseException | None = None

    def _main(self):
        async def main():
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            await self.runner.run(self.stop_event)

        try:
            asyncio.run(main())
        except BaseException as error:
            self.error = error

    def start(self, timeout_s: float = 20) -> EngineThread:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.runner.ready.is_set():
            assert self.error is None, self.error
            assert time.monotonic() < deadline, "engine not ready"
            time.sleep(0.05)
        return self

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=20)
        assert not self.thread.is_alive() and self.error is None, self.error

    @property
    def engine(self):
        return self.runner.engine


def make_runner(sim, *, gateway_options: dict | None = None, **runner_options) -> EngineRunner:
    """An EngineRunner on the simulator; ``gateway_options`` (e.g. ``dcp_window_s``) and
    ``runner_options`` (e.g. ``reconcile_interval_s``) override the test defaults."""
    gateway = BybitGateway(
        mode="sim",
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        base_url=sim.base_url,
        timeout=3.0,
        **(gateway_options or {}),
    )
    endpoints = EngineEndpoints(
        "sim", sim.liquidation_ws_url, sim.public_ws_url, sim.private_ws_url, sim.api_key, sim.api_secret
    )
    options = {
        "reconcile_interval_s": 1.0,
        "journal_interval_s": 0.1,
        "config_interval_s": 5.0,
        "feed_options": {"ping_interval_s": 5, "healthy_after_s": 1},
        **runner_options,
    }
    return EngineRunner(gateway=gateway, endpoints=endpoints, **options)


def move_price(sim, engine, symbol, price):
    sim.set_price(symbol, price)
    wait_until(
        lambda: (m := engine.market.get(symbol)) is not None and m.last_price == Decimal(price),
        what=f"{symbol} price {price} on the engine's ticker stream",
    )


def wait_for_liquidation_stream(sim, thread: EngineThread) -> None:
    """`ready` means reconciled, not subscribed: a liquidation injected before the venue has
    registered the engine's stream connection would be lost, as it would be live."""
    wait_until(lambda: thread.runner.liquidation_feed.stats.connected, what="the liquidation stream")
    wait_until(
        lambda: any("forceOrder" in path and count for path, count in sim.state()["connections"].items()),
        what="the venue to register the stream",
    )


def events_subscribers(redis_db) -> int:
    return dict(redis_db.pubsub_numsub(events_channel())).get(events_channel(), 0)


def entry_orders(sim, symbol="BTCUSDT"):
    """The WL entry orders the simulator received for ``symbol``."""
    return [
        o for o in sim.state()["orders"] if o["symbol"] == symbol and o["orderLinkId"].startswith("wl-entry")
    ]


def start_listening_engine(
    sim, redis_db, *, gateway_options: dict | None = None, **runner_options
) -> EngineThread:
    """An engine on the simulator, started and listening: `ready` means reconciled, not
    subscribed, so this waits until the venue holds its liquidation stream and Redis its event
    subscription (a config or switch event published before that reaches it only at its next
    periodic reload)."""
    before = events_subscribers(redis_db)
    thread = EngineThread(make_runner(sim, gateway_options=gateway_options, **runner_options)).start()
    wait_for_liquidation_stream(sim, thread)
    wait_until(lambda: events_subscribers(redis_db) > before, what="the engine to listen for events")
    return thread
