"""A short `make chaos` (60 s, a fixed seed) in the test run, so CI runs it: the whole
process set under the fault script, then one test per invariant, each named by it.

It runs `python -m chaos` as its own process on a throwaway SQLite file (DATABASE_URL is
not passed on: the run needs an empty database of its own) and TEST_REDIS_URL's database,
which it flushes first as the suite does. A violation prints its lines; the run's logs
stay in var/chaos/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import REPO

pytestmark = pytest.mark.chaos

SEED = 1
SECONDS = 60
INVARIANTS = [
    "orderLinkId never sent twice",
    "no decision produced two orders",
    "no entry while locked/halted/disabled/IM-blocked/PM-managed",
    "qtyStep/minOrderQty/minNotional respected, no 10001",
    "at most one open WL entry per symbol and cascade",
    "every accepted entry is in the journal",
    "panel positions equal the exchange's",
    "panel open orders equal the exchange's",
    "every open WL position has TP and SL",
    "daily-stop crossing flattened once",
    "panic ended verified flat",
    "reset refused while not flat",
    "no key/secret/token in logs, responses, database",
]


@pytest.fixture(scope="module")
def chaos_outcome(tmp_path_factory):
    report = tmp_path_factory.mktemp("chaos") / "report.json"
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["CHAOS_REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    env.pop("SIM_SPEED", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos",
            "--seconds",
            str(SECONDS),
            "--seed",
            str(SEED),
            "--report",
            str(report),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(result.stdout[-6000:])
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    return {check["name"]: check for check in json.loads(report.read_text())}


def test_the_run_checks_every_invariant(chaos_outcome):
    assert sorted(chaos_outcome) == sorted(INVARIANTS)


@pytest.mark.parametrize("name", INVARIANTS)
def test_the_chaos_run_keeps_the_invariant(chaos_outcome, name):
    check = chaos_outcome[name]
    assert check["violations"] == [], "\n".join(check["violations"][:10])
