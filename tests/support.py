"""Constants and helpers shared by test modules and fixtures."""

# Prices the `sim` fixture sets after each reset.
START_PRICES = {"BTCUSDT": "97000.00", "ETHUSDT": "3300.00", "SOLUSDT": "180.000"}


def make_sim_gateway(sim, **options):
    """A prepared gateway (real pybit) on the running simulator; `options` override the defaults."""
    from trading.bybit import BybitGateway

    config = {
        "mode": "sim",
        "api_key": sim.api_key,
        "api_secret": sim.api_secret,
        "base_url": sim.base_url,
        "timeout": 3.0,
        **options,
    }
    gateway = BybitGateway(**config)
    gateway.prepare()
    return gateway
