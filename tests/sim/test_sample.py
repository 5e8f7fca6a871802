"""The seeded sample generator: deterministic, in the replay layout, with clustered liquidations."""

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from simulator import replay, sample
from tests.support import REPO

START = datetime(2025, 1, 27, tzinfo=UTC)


def files(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_the_same_seed_writes_byte_identical_files(tmp_path):
    sample.main(["--seed", "7", "--hours", "1", "--out", str(tmp_path / "a")])
    sample.main(["--seed", "7", "--hours", "1", "--out", str(tmp_path / "b")])
    sample.main(["--seed", "8", "--hours", "1", "--out", str(tmp_path / "c")])
    first, second, other = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert first == second
    assert first["liquidations.jsonl"] != other["liquidations.jsonl"]
    assert "klines/BTCUSDT.csv" in first and "README.md" in first


def test_the_committed_sample_is_what_seed_7_generates(tmp_path):
    sample.write(tmp_path, 7, 6.0, START)
    assert files(tmp_path) == files(REPO / "sample_data")


def test_the_sample_replays_and_has_liquidation_cascades_on_both_sides():
    data = replay.load(REPO / "sample_data")
    assert len(data.instruments) == 10
    assert all(len(rows) == 360 for rows in data.klines.values())
    events = [liquidation.message["o"] for liquidation in data.liquidations]
    sides = Counter(event["S"] for event in events)
    assert sides["BUY"] > 100 and sides["SELL"] > 100
    per_minute = Counter(event["T"] // 60_000 for event in events)
    busiest = sorted(per_minute.values(), reverse=True)
    assert busiest[0] >= 20 * (len(events) / 360)  # cascades, not a steady drizzle
    notional = sorted(float(event["q"]) * float(event["ap"]) for event in events)
    assert notional[-1] > 50 * notional[len(notional) // 2]  # heavy-tailed sizes
    # At most one message per symbol per second, like Binance's stream.
    assert max(Counter((event["s"], event["T"] // 1000) for event in events).values()) == 1
    for event in events:
        instrument = data.instruments[event["s"]]
        assert Decimal(event["q"]) % instrument.qty_step == 0 and Decimal(event["q"]) > 0
        assert Decimal(event["p"]) % instrument.tick_size == 0
