"""A local Bybit V5 venue (REST + websockets) with a Binance-compatible liquidation stream.

It imports nothing from the rest of the project: clients reach it over HTTP exactly as
they reach Bybit. Entry points: `run(options)` (blocking), `python -m simulator`,
`manage.py run_sim`, and `simulator.testing.running_simulator()` for tests.
"""


def run(options) -> None:
    """Serve until interrupted; `options` is a `simulator.options.SimOptions`."""
    from .server import run as run_server

    run_server(options)
