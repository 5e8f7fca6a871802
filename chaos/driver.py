"""Carries out the fault script (chaos/script.py) against the running process set, and keeps
its own log of what it did: faults by kind, drops, kills and restarts, the cascades it
injected, the calls it made to the panel, and the account's IM % sampled every 0.5 s.
It also restarts a process that died on its own (counted apart: nobody killed it)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import ROUND_DOWN, Decimal

from chaos.clients import Panel, SimControl
from chaos.processes import ProcessSet
from chaos.records import Cascade, ImSample
from chaos.script import Step

ENGINE_READY_TIMEOUT_S = 90
# A cascade moves the price this far past the VWAP (the demo coins' offset is 0.6 %); the
# entry's take-profit (1 %) closes it when the price goes back to the VWAP.
CASCADE_MOVE = Decimal("0.015")
WS_PATHS = {"public": "/v5/public/linear", "private": "/v5/private"}
COOLDOWN_S = 65.0  # the demo coins' entry cooldown (60 s) and a margin
IN_FLIGHT_FAULT = {
    "endpoint": "/v5/order/create",
    "mode": "accept_then_timeout",
    "count": 1,
    "latencyMs": 12_000,
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Driver:
    def __init__(
        self,
        *,
        processes: ProcessSet,
        sim: SimControl,
        panel: Panel,
        gateway,
        filters: dict,
        lick_values: dict[str, Decimal],
        tradable: tuple[str, ...] = (),
        say=print,
    ) -> None:
        self.tradable = set(tradable or lick_values)
        self.last_cascade: dict[str, float] = {}
        self.processes = processes
        self.sim = sim
        self.panel = panel
        self.gateway = gateway
        self.filters = filters  # symbol -> instrument row of the venue
        self.lick_values = lick_values
        self.say = say
        self.faults: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.injected_liquidations = 0
        self.cascades: list[Cascade] = []
        self.im_samples: list[ImSample] = []
        self.unexpected_exits: Counter[str] = Counter()
        self.crossed_daily_stop = False
        self.hand_orders = 0
        self.faults_cleared = 0
        self._restarts_due: dict[str, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # -- the run ------------------------------------------------------------------------

    def run(self, steps: list[Step], started: float) -> None:
        self._stop.clear()
        sampler = threading.Thread(target=self._sample_forever, name="chaos-sampler", daemon=True)
        sampler.start()
        try:
            for step in steps:
                while time.monotonic() < started + step.at_s:
                    time.sleep(0.05)
                self.say(f"  {time.monotonic() - started:6.1f}s  {step.action} {_brief(step.params)}")
                try:
                    getattr(self, f"do_{step.action}")(**step.params)
                except Exception as error:  # a step that fails is logged; the run and its checks go on
                    self.say(f"          step failed: {type(error).__name__}: {error}")
        finally:
            self._stop.set()
            sampler.join(timeout=5)

    def _restart_due(self) -> None:
        with self._lock:
            due = [name for name, at in self._restarts_due.items() if time.monotonic() >= at]
            for name in due:
                del self._restarts_due[name]
                self.processes.start(name)

    def _sample_forever(self) -> None:
        """Beside the steps (which may block for a while, e.g. a panic): restarts when due,
        the IM % every 0.5 s, and a process that died on its own started again."""
        sampled = 0.0
        while not self._stop.wait(0.1):
            self._restart_due()
            if time.monotonic() - sampled < 0.5:
                continue
            sampled = time.monotonic()
            try:
                wallet = self.sim.state()["wallet"]
                self.im_samples.append(ImSample(now_ms(), Decimal(wallet["accountIMRate"] or "0") * 100))
            except Exception:
                pass
            with self._lock:
                for name in self.processes.running:
                    if name not in self._restarts_due and not self.processes.alive(name):
                        # Started again after a pause that doubles while it keeps dying (at most 10 s).
                        self.unexpected_exits[name] += 1
                        pause = min(10.0, 0.5 * 2 ** min(self.unexpected_exits[name], 5))
                        self._restarts_due[name] = time.monotonic() + pause
                        self.say(f"          {name} exited on its own; starting it again in {pause:g} s")

    # -- steps --------------------------------------------------------------------------

    def do_fault(self, *, kind: str, body: dict) -> None:
        self.sim.fault(body)
        self.faults[kind] += 1

    def do_drop_ws(self, *, endpoint: str) -> None:
        path = WS_PATHS.get(endpoint)
        if path is None:  # the liquidation feed: whichever path the engine connected to
            connections = self.sim.state()["connections"]
            path = next((p for p in connections if "forceOrder" in p), "/ws/!forceOrder@arr")
        self.sim.fault({"endpoint": path, "mode": "drop_ws", "count": 0})
        self.drops[endpoint] += 1

    def do_kill(self, *, process: str, down_s: float) -> None:
        with self._lock:
            if process in self._restarts_due:
                return
            self.processes.kill(process)
            self._restarts_due[process] = time.monotonic() + down_s

    def _free_coin(self, preferred: str) -> str:
        """`preferred` if it is flat and out of its cooldown, else a coin that is, else the
        coin cascaded longest ago."""
        held = {row["symbol"] for row in self.sim.state()["positions"]}
        now = time.monotonic()

        def rested(symbol: str) -> bool:
            return now - self.last_cascade.get(symbol, -1e9) > COOLDOWN_S

        candidates = [preferred] + sorted(self.lick_values, key=lambda s: self.last_cascade.get(s, -1e9))
        candidates = [s for s in candidates if s in self.tradable]
        for symbol in candidates:
            if symbol not in held and rested(symbol):
                return symbol
        return candidates[1] if len(candidates) > 1 else preferred

    def do_cascade(
        self,
        *,
        symbol: str,
        side: str,
        count: int,
        kill_engine_mid: bool,
        crash_in_flight: bool,
        expect_entry: bool,
        hold: bool,
    ) -> None:
        symbol = self._free_coin(symbol)
        self.last_cascade[symbol] = time.monotonic()
        self.say(f"          on {symbol}")
        tick = Decimal(self.filters[symbol]["priceFilter"]["tickSize"])
        vwap = (self.sim.vwap(symbol) / tick).to_integral_value(ROUND_DOWN) * tick
        move = -CASCADE_MOVE if side == "SELL" else CASCADE_MOVE
        price = (vwap * (1 + move) / tick).to_integral_value(ROUND_DOWN) * tick
        self.sim.set_price(symbol, price)
        time.sleep(0.5)  # the engine sees the new price on its tickers stream
        qty = (self.lick_values[symbol] * 3 / price).quantize(Decimal("0.001"))
        started = now_ms()
        for index in range(count):
            if crash_in_flight and index == 0:
                # The venue takes the entry and holds its answer: faults earlier steps left
                # queued go first, then the engine is killed while the answer is on its way.
                self.faults_cleared += self.sim.call("POST", "/sim/faults/clear", {})["cleared"]
                self.sim.fault(IN_FLIGHT_FAULT)
                self.faults["accept_then_timeout"] += 1
            self.sim.liquidation(symbol, side, price, qty)
            self.injected_liquidations += 1
            time.sleep(0.25)
            if crash_in_flight and index == 0:
                time.sleep(1.0)
                with self._lock:
                    self._restarts_due.pop("engine", None)
                    self.processes.restart("engine")
                time.sleep(1.0)
                self.wait_engine_ready()
            if kill_engine_mid and index == 1:
                with self._lock:
                    self._restarts_due.pop("engine", None)
                    self.processes.restart("engine")
                time.sleep(1.0)  # the venue drops the killed engine's connections
                self.wait_engine_ready()
        self.cascades.append(Cascade(symbol, started, now_ms()))
        if not hold:
            time.sleep(2.0)
            self.sim.set_price(symbol, vwap)  # back to the VWAP: an entry's take-profit closes it

    def do_panic(self) -> None:
        for _attempt in range(5):
            call = self.panel.call("panic", "POST", "/panic", {"reason": "chaos run"})
            self.say(
                f"          panic {call.status} flat={call.body.get('flat')} rounds={call.body.get('rounds')}"
            )
            if call.status == 200:
                return
            time.sleep(2)

    def do_reset(self) -> None:
        for _attempt in range(5):
            call = self.panel.call("reset", "POST", "/panic/reset")
            self.say(f"          reset {call.status} {call.body.get('reason_code', '')}")
            if call.status == 200 or call.body.get("reason_code") == "not_flat":
                return
            time.sleep(2)

    def do_halt(self) -> None:
        self.panel.call("halt", "POST", "/api/trading/halt", {"reason": "chaos run"})
        # What comes next (a cascade) starts past the invariant's grace for the switch to
        # reach the engine, so an entry it lets through counts.
        time.sleep(2.0)

    def do_resume(self) -> None:
        self.panel.call("resume", "POST", "/api/trading/resume")

    def do_hand_position(self, *, symbol: str, notional_fraction: float) -> None:
        """A position opened by hand (as in the Bybit app) on a symbol no strategy trades."""
        from trading.bybit.types import Side

        equity = Decimal(self.sim.state()["wallet"]["totalEquity"])
        price = Decimal(self.sim.price(symbol))
        step = Decimal(self.filters[symbol]["lotSizeFilter"]["qtyStep"])
        qty = (equity * Decimal(str(notional_fraction)) / price / step).to_integral_value(ROUND_DOWN) * step
        for _attempt in range(20):  # the faults meant for the engine hit these orders too
            self.hand_orders += 1
            link = f"chaos-hand-{self.hand_orders}"
            try:
                self.gateway.place_order(
                    symbol=symbol, side=Side.BUY, qty=qty, order_link_id=link, reference_price=price
                )
                return
            except Exception as error:  # an injected fault: was it placed after all?
                self.say(f"          order by hand {link}: {type(error).__name__}")
                time.sleep(1)
                try:
                    if self.gateway.get_order(order_link_id=link, symbol=symbol) is not None:
                        return
                except Exception:
                    pass

    def do_daily_stop_crossing(self, *, symbol: str, notional_fraction: float, drop: str) -> None:
        """Open a position by hand worth the equity, then move its price down `drop`: the
        day's loss passes the stop (5 % in the demo settings) and the risk manager must
        disable trading and flatten, once."""
        self.do_hand_position(symbol=symbol, notional_fraction=notional_fraction)
        price = Decimal(self.sim.price(symbol))
        tick = Decimal(self.filters[symbol]["priceFilter"]["tickSize"])
        for fraction in (Decimal(drop) / 2, Decimal(drop)):
            moved = (price * (1 - fraction) / tick).to_integral_value(ROUND_DOWN) * tick
            self.sim.set_price(symbol, moved)
            time.sleep(1.0)
        self.crossed_daily_stop = True

    def do_replay_done(self, timeout_s: float = 180) -> None:
        """The scripted market starts when the replay has stopped moving prices."""
        deadline = time.monotonic() + timeout_s
        while self.sim.state()["replay"]["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)

    def do_quiet(self) -> None:
        """No more faults or kills: every process up again now."""
        with self._lock:
            for name in list(self._restarts_due):
                del self._restarts_due[name]
                self.processes.start(name)

    # -- readiness ------------------------------------------------------------------------

    def wait_engine_ready(self, timeout_s: float = ENGINE_READY_TIMEOUT_S) -> bool:
        """Until the venue has the engine's liquidation stream registered again."""
        return wait_engine_stream(self.sim, timeout_s)


def wait_engine_stream(sim: SimControl, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if any("forceOrder" in path and count for path, count in sim.state()["connections"].items()):
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


def _brief(params: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in params.items() if key != "body")
