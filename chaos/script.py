"""The fault script as data: a seeded plan of steps over the run (pure; `chaos.driver`
carries it out). The same seed and length give the same plan, so a failing run repeats.

The run has three parts (fractions of CHAOS_SECONDS):
- 0 - 0.5: the sample replays at high speed (the engine trades what it sees);
- 0.5 - 0.85: the market is still and the script moves it: liquidation cascades on the
  demo coins (one with the engine killed in the middle; the last two leave their
  positions open, for the final comparison), the panic and its resets, a /kill and a resume;
- 0.05 - 0.85: exchange faults, websocket drops and SIGKILLs of engine, worker, beat and
  web at random moments, each process restarted after a short pause;
- 0.85 - 1: quiet (no faults, every process up) before the final comparison. The
  daily-stop crossing comes after that comparison (`chaos.__main__`): after it nothing
  may enter until tomorrow, and it flattens every position.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

KILLABLE = ("engine", "riskwatch", "worker", "risk_worker", "beat", "web")
FAULT_KINDS = ("10006_burst", "110017", "110007", "http_5xx", "accept_then_timeout", "latency")
WS_ENDPOINTS = ("public", "private", "liquidation")
REPLAY_END = 0.5
CHAOS_END = 0.85


@dataclass(frozen=True)
class Step:
    at_s: float
    action: str
    params: dict = field(default_factory=dict, compare=False)


def fault_body(kind: str, rng: random.Random) -> dict:
    """The `/sim/fault` body of one fault kind (docs/simulator.md)."""
    create = "/v5/order/create"
    if kind == "10006_burst":
        return {"endpoint": "*", "mode": "error", "retCode": 10006, "count": rng.randint(5, 20)}
    if kind == "110017":
        return {"endpoint": create, "mode": "error", "retCode": 110017, "count": 1}
    if kind == "110007":
        return {"endpoint": create, "mode": "error", "retCode": 110007, "count": 1}
    if kind == "http_5xx":
        return {
            "endpoint": "*",
            "mode": "error",
            "httpStatus": rng.choice((500, 502, 503)),
            "count": rng.randint(1, 6),
        }
    if kind == "accept_then_timeout":
        return {"endpoint": create, "mode": "accept_then_timeout", "count": 1, "latencyMs": 12_000}
    if kind == "latency":
        return {
            "endpoint": "*",
            "mode": "latency",
            "latencyMs": rng.randint(200, 900),
            "count": rng.randint(10, 40),
        }
    raise ValueError(kind)


def plan(*, seed: int, seconds: float, coins: tuple[str, ...], hand_symbol: str) -> list[Step]:
    """The whole run's steps in time order. `coins`: symbols the engine trades (cascades);
    `hand_symbol`: a listed symbol no strategy trades, for the positions opened by hand."""
    rng = random.Random(seed)
    chaos_from, chaos_to = 0.05 * seconds, CHAOS_END * seconds
    steps: list[Step] = []

    # Exchange faults: every kind at least once, then more at random, about one per 6 s.
    kinds = list(FAULT_KINDS) + [
        rng.choice(FAULT_KINDS) for _ in range(max(0, int(seconds / 6) - len(FAULT_KINDS)))
    ]
    for kind in kinds:
        steps.append(
            Step(rng.uniform(chaos_from, chaos_to), "fault", {"kind": kind, "body": fault_body(kind, rng)})
        )
    # Websocket drops: each stream at least once.
    drops = list(WS_ENDPOINTS) + [rng.choice(WS_ENDPOINTS) for _ in range(int(seconds / 60))]
    for endpoint in drops:
        steps.append(Step(rng.uniform(chaos_from, chaos_to), "drop_ws", {"endpoint": endpoint}))
    # SIGKILLs: each process at least once, more in longer runs; down 1-4 s.
    kills = list(KILLABLE) + [rng.choice(KILLABLE) for _ in range(int(seconds / 50))]
    for process in kills:
        steps.append(
            Step(
                rng.uniform(chaos_from, chaos_to),
                "kill",
                {"process": process, "down_s": round(rng.uniform(1, 4), 2)},
            )
        )

    # The scripted market, after the replay.
    still = REPLAY_END * seconds
    span = (CHAOS_END - REPLAY_END) * seconds

    def at(fraction: float) -> float:
        return still + fraction * span

    # The coin named is a preference: the driver takes a coin that is flat and out of its
    # cooldown (60 s in the demo) when it has one, so the scenarios below can enter.
    pool = list(coins)
    rng.shuffle(pool)
    used: list[str] = []

    def cascade(
        fraction: float, *, kill_engine_mid=False, crash_in_flight=False, expect_entry=True, hold=False
    ):
        used.append(pool[len(used) % len(pool)])
        return Step(
            at(fraction),
            "cascade",
            {
                "symbol": used[-1],
                "side": rng.choice(("SELL", "BUY")),  # Binance's order side: SELL liquidates a long
                "count": rng.randint(4, 8),
                "kill_engine_mid": kill_engine_mid,  # after the entry was answered
                "crash_in_flight": crash_in_flight,  # while the entry's answer is on its way
                "expect_entry": expect_entry,
                "hold": hold,  # the price stays past the VWAP: an entry stays open
            },
        )

    steps += [
        Step(at(0.0), "replay_done"),
        cascade(0.01, crash_in_flight=True),
        Step(at(0.06), "halt"),
        cascade(0.08, expect_entry=False),
        Step(at(0.14), "resume"),
        cascade(0.16),
        cascade(0.22, kill_engine_mid=True),
        Step(at(0.30), "panic"),
        Step(at(0.36), "hand_position", {"symbol": hand_symbol, "notional_fraction": 0.02}),
        Step(at(0.40), "reset"),  # refused: the position by hand is open
        Step(at(0.44), "panic"),  # flattens it
        Step(at(0.50), "reset"),  # accepted: flat
        cascade(0.56),
        cascade(0.64, kill_engine_mid=True, hold=True),
        cascade(0.74, hold=True),
    ]
    steps.append(Step(chaos_to, "quiet"))
    return sorted(steps, key=lambda step: step.at_s)


def daily_stop_step(hand_symbol: str) -> Step:
    """After the final comparison: a position by hand worth the equity, its price moved
    down 8 %: the day's loss passes the demo's 5 % stop."""
    return Step(0.0, "daily_stop_crossing", {"symbol": hand_symbol, "notional_fraction": 1.0, "drop": "0.08"})
