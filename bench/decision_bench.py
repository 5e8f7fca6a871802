"""Micro-benchmark: recorded Binance liquidation messages through parse + decide, on one core.

Not a test: run it on purpose and read the figures.

    .venv/bin/python bench/decision_bench.py [--seconds 3]

Scenarios (the recorded messages are cycled):

* ``parse``: ``parse_binance_force_order`` alone, all 5,774 recorded messages.
* ``entry path``: the 259 messages of the five configured coins, every one
  going the whole way to an ``Entry`` (sizing, rounding, TP/SL, orderLinkId):
  the worst case per message.
* ``all-symbols stream``: every recorded message, with only the five coins
  configured, so most stop at ``not_configured`` as on the live stream.

Throughput runs a tight loop; latency times each message separately
(``perf_counter_ns`` adds ~0.1 us to each sample).
"""

from __future__ import annotations

import argparse
import decimal
import gzip
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trading.events import MalformedMessage  # noqa: E402
from trading.feeds import parse_binance_force_order  # noqa: E402
from trading.instruments import Instrument  # noqa: E402
from trading.rules.decision import AccountSnapshot, CoinRule, Entry, decide  # noqa: E402
from trading.rules.vwap import MINUTE_MS, Candle, MarketState  # noqa: E402

RESOURCES = ROOT / "tests" / "resources" / "binance"
NOW_MS = 1_737_998_000_000
# Bybit's filters for the five symbols (instruments-info, early 2025).
FILTERS = {
    "BTCUSDT": ("0.001", "0.001", "5", "0.10"),
    "SOLUSDT": ("0.1", "0.1", "5", "0.010"),
    "XRPUSDT": ("1", "1", "5", "0.0001"),
    "DOGEUSDT": ("1", "1", "5", "0.00001"),
    "ADAUSDT": ("1", "1", "5", "0.0001"),
}


def load_lines() -> tuple[list[str], list[str]]:
    five = [line for line in (RESOURCES / "usdm_2025-01-27" / "liquidations.jsonl").read_text().splitlines()]
    everything = list(five)
    for path in sorted(RESOURCES.glob("force_order_*_all-symbols.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            everything.extend(line.rstrip("\n") for line in handle if line.strip())
    return five, everything


def build_world(five_lines: list[str]):
    """Coins, instruments and two market views per symbol: one where every long liquidation
    meets its offset (price below VWAP) and one where every short does (price above)."""
    coins, instruments, below, above = {}, {}, {}, {}
    prices: dict[str, list[Decimal]] = {}
    for line in five_lines:
        event = parse_binance_force_order(line)
        prices.setdefault(event.symbol, []).append(event.price)
    start = NOW_MS - NOW_MS % MINUTE_MS
    for symbol, (step, min_qty, min_notional, tick) in FILTERS.items():
        vwap = sum(prices[symbol]) / len(prices[symbol])
        coins[symbol] = CoinRule(
            symbol=symbol,
            enabled=True,
            long_offset_pct=Decimal("0.5"),
            short_offset_pct=Decimal("0.5"),
            min_liquidation_usdt=Decimal("1"),
            order_size_usdt=Decimal("25"),
            order_size_pct_equity=None,
            leverage=10,
            take_profit_pct=Decimal("1.5"),
            stop_loss_pct=Decimal("0.8"),
            vwap_window_minutes=60,
            entry_cooldown_seconds=60,
            # The recordings are days older than NOW_MS: the age check runs on every event
            # (one comparison) and passes, so each still goes the whole way to an Entry.
            max_event_age_ms=10**13,
        )
        instruments[symbol] = Instrument(
            symbol=symbol,
            qty_step=Decimal(step),
            min_order_qty=Decimal(min_qty),
            max_order_qty=None,
            max_market_order_qty=None,
            min_notional_value=Decimal(min_notional),
            tick_size=Decimal(tick),
            max_leverage=Decimal("50"),
            status="Trading",
        )
        for views, factor in ((below, Decimal("0.99")), (above, Decimal("1.01"))):
            state = MarketState()
            view = state.watch(symbol, [60])
            for minute in range(60):
                candle = Candle(
                    start - (59 - minute) * MINUTE_MS, vwap, vwap, vwap, vwap, Decimal(3), vwap * 3, True
                )
                state.apply_candles(symbol, [candle], at_ms=NOW_MS)
            state.apply_price(symbol, (vwap * factor).quantize(Decimal(tick)), at_ms=NOW_MS)
            views[symbol] = view
    account = AccountSnapshot(
        equity_usdt=Decimal("10000"),
        im_pct=Decimal("12.5"),
        im_warn_pct=Decimal("80"),
        im_block_pct=Decimal("100"),
        max_open_positions=5,
    )
    return coins, instruments, below, above, account


def throughput(step, items, seconds: float) -> tuple[float, int]:
    """Messages per second of ``step`` over ``items`` (cycled) for about ``seconds``."""
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for item in items:
            step(item)
        done += len(items)
    return done / (time.perf_counter() - started), done


def latency(step, items, rounds: int) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for item in items:
            begin = clock()
            step(item)
            samples.append((clock() - begin) / 1000)
    return samples


def report(name: str, rate: float, count: int, samples: list[float]) -> None:
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99)]
    print(
        f"{name:<22} {rate:>10,.0f} msg/s   mean {statistics.fmean(samples):6.2f} us   "
        f"p50 {p50:6.2f} us   p99 {p99:6.2f} us   max {samples[-1]:8.2f} us   ({count:,} msgs)"
    )


def entry_path_rate(seconds: float) -> float:
    """Parse + decide per second on the worst case: every message goes the whole way to an Entry."""
    five, _ = load_lines()
    coins, instruments, below, above, account = build_world(five)

    def parse_and_decide(line: str) -> None:
        event = parse_binance_force_order(line)
        views = below if event.liquidated_side == "long" else above
        result = decide(
            event,
            coin=coins.get(event.symbol),
            market=views.get(event.symbol),
            account=account,
            instrument=instruments.get(event.symbol),
            now_ms=NOW_MS,
        )
        assert type(result) is Entry

    rate, _ = throughput(parse_and_decide, five, seconds)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    args = parser.parse_args()

    five, everything = load_lines()
    coins, instruments, below, above, account = build_world(five)
    entries = 0

    def parse_only(line: str) -> None:
        try:
            parse_binance_force_order(line)
        except MalformedMessage:
            pass

    def parse_and_decide(line: str) -> None:
        nonlocal entries
        try:
            event = parse_binance_force_order(line)
        except MalformedMessage:
            return
        symbol = event.symbol
        views = below if event.liquidated_side == "long" else above
        result = decide(
            event,
            coin=coins.get(symbol),
            market=views.get(symbol),
            account=account,
            instrument=instruments.get(symbol),
            now_ms=NOW_MS,
        )
        if type(result) is Entry:
            entries += 1

    print(
        f"Python {sys.version.split()[0]}, decimal {decimal.__name__} "
        f"(libmpdec {getattr(decimal, '__libmpdec_version__', 'n/a')}), one core"
    )
    for name, step, items in (
        ("parse", parse_only, everything),
        ("parse+decide entry", parse_and_decide, five),
        ("parse+decide stream", parse_and_decide, everything),
    ):
        entries = 0
        rate, count = throughput(step, items, args.seconds)
        if name == "parse+decide entry":
            assert entries == count, f"only {entries} of {count} reached an Entry"
        report(name, rate, count, latency(step, items, rounds=max(1, 20_000 // len(items))))


if __name__ == "__main__":
    main()
