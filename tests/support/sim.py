"""The simulator from the test side: the prices the `sim` fixture starts from, a prepared
gateway on it, a market order, readers of its state, and pybit's WebSocket pointed at it."""

from __future__ import annotations

from decimal import Decimal

from pybit.unified_trading import WebSocket

from trading.bybit import BybitGateway

# Prices the `sim` fixture sets after each reset.
START_PRICES = {"BTCUSDT": "97000.00", "ETHUSDT": "3300.00", "SOLUSDT": "180.000"}


def make_sim_gateway(sim, *, prepare: bool = True, **options) -> BybitGateway:
    """A gateway (real pybit) on the running simulator, prepared (clock synced, instruments
    loaded, position mode known) unless `prepare` is false; `options` override the defaults."""
    config = {
        "mode": "sim",
        "api_key": sim.api_key,
        "api_secret": sim.api_secret,
        "base_url": sim.base_url,
        "timeout": 3.0,
        **options,
    }
    gateway = BybitGateway(**config)
    if prepare:
        gateway.prepare()
    return gateway


def market_order(gateway, symbol: str, side, qty: str, price: str, link: str) -> None:
    """A market order through the gateway; `price` is the reference price it is sized against."""
    gateway.place_order(
        symbol=symbol, side=side, qty=Decimal(qty), order_link_id=link, reference_price=Decimal(price)
    )


def set_prices(sim, **by_symbol: str) -> None:
    """Set last prices: set_prices(sim, XRPUSDT="2.75")."""
    for symbol, price in by_symbol.items():
        sim.set_price(symbol, price)


def sim_positions(sim) -> dict[str, dict]:
    """The simulator's position rows by symbol."""
    return {row["symbol"]: row for row in sim.state()["positions"]}


def sim_orders(sim) -> list[dict]:
    """Every order request the simulator received that it accepted."""
    return [order for order in sim.state()["orders"] if not order.get("rejectCode")]


def open_orders_on_exchange(sim) -> list[dict]:
    """The simulator's orders still working (resting or untriggered)."""
    return [o for o in sim.state()["orders"] if o["orderStatus"] in ("New", "PartiallyFilled", "Untriggered")]


class LocalWebSocket(WebSocket):
    """pybit's WebSocket with its URL pointed at the simulator (reconnects included)."""

    def __init__(self, url: str, **options):
        self._local_url = url
        super().__init__(testnet=False, **options)

    def _connect(self, url):
        super()._connect(self._local_url)
