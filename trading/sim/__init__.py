"""A local Bybit V5 venue (REST + websockets) with a Binance-compatible liquidation stream.

It imports nothing from the rest of the project: clients reach it over HTTP exactly as
they reach Bybit. Entry points: `run(options)` (blocking), `python -m trading.sim`,
`manage.py run_sim`, and `trading.sim.testing.running_simulator()` for tests.
"""


def run(options) -> None:
    """Serve until interrupted; `options` is a `trading.sim.simulator.SimOptions`."""
    from .server import run as run_server

    run_server(options)
