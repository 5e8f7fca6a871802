"""aiohttp wiring of the simulator: every route on one port, and the blocking entry point.

Bybit V5 REST (rest_market.py, rest_trade.py through rest.py), the websockets (ws.py)
and the /sim/ control surface (control.py).
"""

import asyncio
import logging
import signal

from aiohttp import web

from . import control, ws
from .options import SimOptions
from .rest import private_handler, public_handler
from .rest_market import PUBLIC_ROUTES
from .rest_trade import PRIVATE_ROUTES
from .simulator import SIM_KEY, Simulator

logger = logging.getLogger("simulator")


def create_app(sim: Simulator) -> web.Application:
    app = web.Application(middlewares=[control.localhost_only])
    app[SIM_KEY] = sim
    for path, function in PUBLIC_ROUTES.items():
        app.router.add_get(path, public_handler(function))
    for (method, path), function in PRIVATE_ROUTES.items():
        app.router.add_route(method, path, private_handler(path, method, function))
    app.router.add_get("/v5/public/linear", ws.bybit_ws(ws.PUBLIC_ENDPOINT))
    app.router.add_get("/v5/private", ws.bybit_ws(ws.PRIVATE_ENDPOINT))
    app.router.add_get("/market/ws/{streams:.+}", ws.binance_ws)
    app.router.add_get("/ws/{streams:.+}", ws.binance_ws)
    app.router.add_get("/{kind:stream}", ws.binance_ws)
    app.router.add_get("/market/{kind:stream}", ws.binance_ws)
    app.router.add_post("/sim/price", control.control_price)
    app.router.add_post("/sim/liquidation", control.control_liquidation)
    app.router.add_post("/sim/fault", control.control_fault)
    app.router.add_post("/sim/transfer", control.control_transfer)
    app.router.add_post("/sim/collateral", control.control_collateral)
    app.router.add_post("/sim/faults/clear", control.control_faults_clear)
    app.router.add_post("/sim/reset", control.control_reset)
    app.router.add_post("/sim/settings", control.control_settings)
    app.router.add_get("/sim/state", control.control_state)
    app.router.add_get("/sim/record", control.control_record)
    app.router.add_post("/sim/replay", control.control_replay)

    async def on_startup(app):
        await sim.start()

    async def on_shutdown(app):
        await sim.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def serve(options: SimOptions, ready=None, stop_event: asyncio.Event | None = None) -> None:
    """Run until `stop_event` is set (or forever). `ready(port)` is called once listening."""
    sim = Simulator(options)
    app = create_app(sim)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else options.port
    if ready is not None:
        ready(port, sim)
    try:
        if stop_event is None:
            stop_event = asyncio.Event()
        await stop_event.wait()
    finally:
        await runner.cleanup()


def run(options: SimOptions) -> None:
    """Blocking entry point for `python -m simulator` and `manage.py run_sim`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main():
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop_event.set)
            except (NotImplementedError, RuntimeError):
                pass

        def ready(port, sim):
            mode = (
                f"replay of {options.data_dir} at speed {options.speed or 'max'}"
                if options.data_dir
                else f"still market, {len(sim.market.instruments)} symbols"
            )
            logger.info(
                "simulator listening on http://%s:%s (%s); rate tier %s",
                options.host,
                port,
                mode,
                options.rate_tier,
            )

        await serve(options, ready, stop_event)

    asyncio.run(main())
