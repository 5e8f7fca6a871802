"""Where the recorded venue data lives (tests/resources/, see its README), and its loaders."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
BYBIT_EXAMPLES = RESOURCES / "bybit"
BINANCE = RESOURCES / "binance"
# One recorded window in the simulator's replay layout (liquidations.jsonl, klines/<SYMBOL>.csv).
BINANCE_REPLAY = BINANCE / "usdm_2025-01-27"
FIVE_SYMBOLS = BINANCE_REPLAY / "liquidations.jsonl"
# Malformed venue input, written by us (see the README): liquidation frames, gateway rows, answers.
HOSTILE = RESOURCES / "hostile"


def bybit_example(name: str) -> dict:
    """Bybit's documented example `name` (the file name without .json), parsed."""
    return json.loads((BYBIT_EXAMPLES / f"{name}.json").read_text())


def five_symbol_lines() -> list[str]:
    """The 259 recorded messages of BTC, SOL, XRP, DOGE and ADA USDT, in time order."""
    return [line for line in FIVE_SYMBOLS.read_text().splitlines() if line.strip()]


def recorded_binance_lines() -> list[tuple[str, str]]:
    """Every recorded Binance forceOrder message (5,774): (file name, raw line)."""
    name = str(FIVE_SYMBOLS.relative_to(BINANCE))
    rows = [(name, line) for line in five_symbol_lines()]
    for path in sorted(BINANCE.glob("force_order_*_all-symbols.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            rows.extend((path.name, line.rstrip("\n")) for line in handle if line.strip())
    return rows


def hostile_corpus(name: str, key: str) -> list[dict]:
    """The entries (``key``: frames, rows or answers) of ``hostile/<name>.json``."""
    return json.loads((HOSTILE / f"{name}.json").read_text())[key]
