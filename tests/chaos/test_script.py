"""The fault script: seeded, complete, and quiet at the end (chaos/script.py)."""

from __future__ import annotations

from collections import Counter

from chaos.script import CHAOS_END, FAULT_KINDS, KILLABLE, WS_ENDPOINTS, daily_stop_step, plan

COINS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def make(seed: int, seconds: float = 60):
    return plan(seed=seed, seconds=seconds, coins=COINS, hand_symbol="LINKUSDT")


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    def shape(steps):
        return [(step.at_s, step.action, sorted(step.params.items(), key=str)) for step in steps]

    assert shape(make(7)) == shape(make(7))
    assert shape(make(7)) != shape(make(8))


def test_every_fault_kind_drop_and_kill_is_in_a_short_run():
    steps = make(3)
    kinds = Counter(step.params["kind"] for step in steps if step.action == "fault")
    assert set(kinds) == set(FAULT_KINDS)
    assert {step.params["endpoint"] for step in steps if step.action == "drop_ws"} == set(WS_ENDPOINTS)
    assert {step.params["process"] for step in steps if step.action == "kill"} == set(KILLABLE)
    actions = [step.action for step in steps]
    for action in ("panic", "reset", "halt", "resume", "hand_position", "cascade"):
        assert action in actions
    cascades = [step.params for step in steps if step.action == "cascade"]
    assert any(params["kill_engine_mid"] for params in cascades)
    assert cascades[0]["crash_in_flight"], "the engine dies with an entry in flight, on a fresh coin"
    halted = [step.action for step in steps if step.action in ("halt", "cascade", "resume")][1:4]
    assert halted == ["halt", "cascade", "resume"]


def test_nothing_breaks_after_the_quiet_mark_and_the_last_cascades_leave_positions_open():
    steps = make(11, seconds=300)
    quiet = next(step.at_s for step in steps if step.action == "quiet")
    assert quiet == CHAOS_END * 300 and steps[-1].action == "quiet"
    cascades = [step for step in steps if step.action == "cascade"]
    assert [step.params["hold"] for step in cascades][-2:] == [True, True]
    assert not any(step.params["hold"] for step in cascades[:-2])
    # the panic's first reset is tried while the position by hand stands, the second after the next panic
    order = [step.action for step in steps if step.action in ("panic", "hand_position", "reset")]
    assert order == ["panic", "hand_position", "reset", "panic", "reset"]


def test_the_daily_stop_crossing_is_not_in_the_plan_but_after_the_comparison():
    assert "daily_stop_crossing" not in {step.action for step in make(3)}
    assert daily_stop_step("LINKUSDT").params["symbol"] == "LINKUSDT"


def test_a_longer_run_breaks_more():
    assert len(make(5, seconds=300)) > len(make(5, seconds=60))
