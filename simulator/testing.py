"""Run the simulator inside a test process.

    from simulator.testing import running_simulator

    with running_simulator(equity="10000") as sim:
        session = HTTP(api_key=sim.api_key, api_secret=sim.api_secret)
        session.endpoint = sim.base_url
        sim.set_price("BTCUSDT", "65000")

The server runs on its own asyncio loop in a background thread, on a free port of
127.0.0.1; the helpers talk to its /sim/ control surface over HTTP, like any client.
"""

import asyncio
import contextlib
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from .options import SimOptions
from .server import serve

START_TIMEOUT_S = 30


class SimulatorControlError(RuntimeError):
    """A /sim/ control request was refused (the message says why)."""


@dataclass
class SimulatorHandle:
    host: str
    port: int
    api_key: str
    api_secret: str
    options: SimOptions = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def public_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v5/public/linear"

    @property
    def private_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v5/private"

    @property
    def liquidation_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/market/ws/!forceOrder@arr"

    # -- control surface ----------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as failure:
            raise SimulatorControlError(
                f"{method} {path}: {failure.code} {failure.read().decode()}"
            ) from None

    def set_price(self, symbol: str, price) -> dict:
        return self._call("POST", "/sim/price", {"symbol": symbol, "price": str(price)})

    def liquidation(self, symbol: str, side: str, price, qty) -> dict:
        """Inject a liquidation; side is Binance's order side (SELL liquidates a long)."""
        return self._call(
            "POST", "/sim/liquidation", {"symbol": symbol, "side": side, "price": str(price), "qty": str(qty)}
        )

    def fault(
        self,
        endpoint: str,
        *,
        mode: str = "error",
        count: int = 1,
        retCode: int | None = None,
        httpStatus: int | None = None,
        latencyMs: int | None = None,
        retMsg: str | None = None,
        symbol: str | None = None,
    ) -> dict:
        """Queue a fault (see docs/simulator.md); with `symbol`, a refusal of that symbol's orders
        only, counted per order, in a batch too."""
        body = {"endpoint": endpoint, "mode": mode, "count": count}
        for name, value in (
            ("retCode", retCode),
            ("httpStatus", httpStatus),
            ("latencyMs", latencyMs),
            ("retMsg", retMsg),
            ("symbol", symbol),
        ):
            if value is not None:
                body[name] = value
        return self._call("POST", "/sim/fault", body)

    def transfer(self, amount, coin: str = "USDT") -> dict:
        """Deposit (`amount` > 0) or withdraw (< 0) a coin: a TRANSFER_IN/TRANSFER_OUT row."""
        return self._call("POST", "/sim/transfer", {"coin": coin, "amount": str(amount)})

    def collateral(self, coin: str, usd_price, collateral_ratio) -> dict:
        """Price a coin other than USDT, and its collateral value ratio (1 - haircut)."""
        return self._call(
            "POST",
            "/sim/collateral",
            {"coin": coin, "usdPrice": str(usd_price), "collateralRatio": str(collateral_ratio)},
        )

    def configure(
        self, *, rate_tier: str | None = None, latency_ms: int | None = None, dcp_enabled: bool | None = None
    ) -> dict:
        """The rate tier, the latency added to every REST answer and whether the account has
        DCP, until the next reset."""
        body = {"rateTier": rate_tier, "latencyMs": latency_ms, "dcpEnabled": dcp_enabled}
        return self._call("POST", "/sim/settings", {k: v for k, v in body.items() if v is not None})

    def reset(self, equity="10000") -> dict:
        return self._call("POST", "/sim/reset", {"equity": str(equity)})

    def state(self) -> dict:
        return self._call("GET", "/sim/state")

    def faults_clear(self) -> dict:
        return self._call("POST", "/sim/faults/clear", {})

    def record(self) -> dict:
        return self._call("GET", "/sim/record")

    def start_replay(self, speed=None) -> dict:
        return self._call("POST", "/sim/replay", {} if speed is None else {"speed": speed})


@contextlib.contextmanager
def running_simulator(*, data_dir=None, speed=1.0, equity="10000", **options):
    """Start a simulator on a free 127.0.0.1 port in a background thread; stop it on exit.

    Extra keyword arguments are `SimOptions` fields (api_key, rate_tier, replay_autostart,
    liquidation_batch_ms, slippage, ...).
    """
    sim_options = SimOptions(
        host="127.0.0.1",
        port=0,
        data_dir=str(data_dir) if data_dir else None,
        speed=speed,
        equity=equity,
        **options,
    )
    started = threading.Event()
    box: dict = {}

    def ready(port, simulator):
        box["port"] = port
        started.set()

    def thread_main():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        box["loop"] = loop
        stop_event = asyncio.Event()
        box["stop"] = stop_event
        try:
            loop.run_until_complete(serve(sim_options, ready, stop_event))
        except BaseException as failure:  # surfaced to the caller below
            box["error"] = failure
            started.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=thread_main, name="trading-sim", daemon=True)
    thread.start()
    if not started.wait(START_TIMEOUT_S) or "error" in box:
        raise RuntimeError(f"simulator did not start: {box.get('error')!r}")
    handle = SimulatorHandle(
        "127.0.0.1", box["port"], sim_options.api_key, sim_options.api_secret, sim_options
    )
    try:
        yield handle
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=15)
