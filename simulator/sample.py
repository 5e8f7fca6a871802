"""Seeded synthetic market data in the replay layout (deterministic for a seed).

    python -m simulator.sample --seed 7 --hours 6 --out sample_data/

writes `liquidations.jsonl` (Binance forceOrder messages), `klines/SYMBOL.csv`
(Binance 1-minute kline columns with the header row) and a README.md.

The model, per second: a common market factor plus each coin's own noise; now and then
a shock (a sharp move of one to a few percent over a few minutes, either way) that
every coin follows by its beta. Liquidations arrive with an intensity that grows with
the size of the last minute's move and excites itself (a Hawkes process), so sharp
moves bring cascades; the side follows the move (a fall liquidates longs: SELL
orders), and sizes are Pareto-distributed (heavy-tailed). Like the real
`!forceOrder@arr` stream, at most one liquidation per symbol per second is emitted.
This is synthetic data for exercising the system, not a market forecast.
"""

import argparse
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from pathlib import Path

from .instruments import DEFAULT_INSTRUMENTS, Instrument

KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
DEFAULT_START = "2025-01-27T00:00:00Z"
SECONDS_PER_MINUTE = 60
# Daily volatility of the market factor (~3 %), as a per-second standard deviation.
MARKET_SIGMA = 0.03 / math.sqrt(86_400)
BASE_LIQUIDATIONS_PER_SECOND = 0.0015
HAWKES_JUMP = 0.05  # intensity added by each liquidation ...
HAWKES_DECAY = 0.9048374180359595  # ... fading with a 10 s time constant: exp(-1/10)
MAX_NOTIONAL = 3_000_000.0
POISSON_SLICES = 20  # a second's liquidation count: 20 Bernoulli slices (binomial ~ Poisson)
# Byte-identical output on every machine: the model uses only + - * / and sqrt, which
# IEEE 754 rounds exactly; exp, log, pow and random.gauss depend on the platform's libm.


@dataclass
class CoinModel:
    instrument: Instrument
    beta: float
    own_sigma: float
    size_scale: float  # smallest typical liquidation in USDT
    minute_notional: float  # typical traded value per quiet minute, USDT


def coin_models(rng: random.Random, symbols: list[str]) -> list[CoinModel]:
    models = []
    for symbol in symbols:
        inst = DEFAULT_INSTRUMENTS[symbol]
        major = symbol in ("BTCUSDT", "ETHUSDT")
        models.append(
            CoinModel(
                instrument=inst,
                beta=1.0 if symbol == "BTCUSDT" else rng.uniform(1.1, 1.6),
                own_sigma=MARKET_SIGMA * (0.3 if major else rng.uniform(0.6, 1.2)),
                size_scale=400.0 if major else rng.uniform(60.0, 200.0),
                minute_notional=(
                    8_000_000.0
                    if symbol == "BTCUSDT"
                    else 3_000_000.0
                    if major
                    else rng.uniform(150_000.0, 900_000.0)
                ),
            )
        )
    return models


def _count(rng: random.Random, rate: float) -> int:
    """Events in one second at `rate` per second (binomial over slices of the second)."""
    chance = min(1.0, rate / POISSON_SLICES)
    return sum(1 for _ in range(POISSON_SLICES) if rng.random() < chance)


def _normal(rng: random.Random, sigma: float) -> float:
    """Approximately normal (Irwin-Hall: twelve uniforms), without libm."""
    return (sum(rng.random() for _ in range(12)) - 6.0) * sigma


def _pareto(rng: random.Random, scale: float) -> float:
    """Pareto with alpha 4/3: scale * u^(-3/4), computed with square roots only."""
    root = math.sqrt(1.0 - rng.random())  # in (0, 1]
    return scale / (root * math.sqrt(root))


def _squash(x: float) -> float:
    """A tanh-like curve from -1 to 1."""
    return x / (1.0 + abs(x))


def _quantize(value: float, step: Decimal, rounding=ROUND_HALF_EVEN) -> Decimal:
    """The multiple of step nearest to value (or in the given direction)."""
    return (Decimal(repr(value)) / step).to_integral_value(rounding=rounding) * step


def _round(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_EVEN)


def _text(value: Decimal, step: Decimal) -> str:
    exponent = step.as_tuple().exponent
    return str(value.quantize(Decimal(1).scaleb(min(0, exponent))))


def generate(seed: int, hours: float, start: datetime, symbols: list[str] | None = None):
    """Return (klines: {symbol: [csv lines]}, liquidations: [json lines]) for the given seed."""
    rng = random.Random(seed)
    symbols = symbols or list(DEFAULT_INSTRUMENTS)
    models = coin_models(rng, symbols)
    start_ms = int(start.timestamp() * 1000)
    start_ms -= start_ms % 60_000
    minutes = int(round(hours * 60))
    prices = [float(model.instrument.start_price) for model in models]
    history = [[price] * SECONDS_PER_MINUTE for price in prices]  # the last minute of prices
    excitation = [0.0] * len(models)
    shock_left, shock_drift = 0, 0.0
    klines = {model.instrument.symbol: [KLINE_HEADER] for model in models}
    liquidations: list[tuple[int, int, str]] = []

    for minute in range(minutes):
        minute_ms = start_ms + minute * 60_000
        path = [[] for _ in models]
        buy_share = [0.0] * len(models)
        for second in range(SECONDS_PER_MINUTE):
            if shock_left == 0 and rng.random() < 1 / 2400:  # about one shock in 40 minutes
                shock_left = rng.randint(60, 300)
                size = rng.uniform(0.008, 0.03) * rng.choice((-1, 1))
                shock_drift = size / shock_left
            market = _normal(rng, MARKET_SIGMA * (3.0 if shock_left else 1.0)) + (
                shock_drift if shock_left else 0.0
            )
            if shock_left:
                shock_left -= 1
            for index, model in enumerate(models):
                step = model.beta * market + _normal(rng, model.own_sigma)
                price = prices[index] * (1.0 + step)
                prices[index] = price
                window = history[index]
                window.append(price)
                del window[0]
                path[index].append(price)
                buy_share[index] += 1.0 if step > 0 else 0.0
                # Liquidation intensity: the last minute's move in standard deviations.
                move = window[-1] / window[0] - 1.0
                z = move / (MARKET_SIGMA * model.beta * math.sqrt(SECONDS_PER_MINUTE))
                rate = BASE_LIQUIDATIONS_PER_SECOND * (1.0 + 0.4 * z * z) + excitation[index]
                rate = min(rate, 1.0)
                excitation[index] *= HAWKES_DECAY
                count = _count(rng, rate)
                if not count:
                    continue
                excitation[index] += HAWKES_JUMP * count
                long_liquidated = rng.random() < 0.5 + 0.45 * _squash(-z / 1.5)
                millis = rng.randrange(1000)
                event_ms = minute_ms + second * 1000 + millis
                liquidations.append(
                    (event_ms, index, _liquidation_line(rng, model, price, long_liquidated, event_ms))
                )
        for index, model in enumerate(models):
            klines[model.instrument.symbol].append(
                _kline_line(rng, model, minute_ms, path[index], buy_share[index] / SECONDS_PER_MINUTE)
            )
    liquidations.sort(key=lambda item: (item[0], item[1]))
    return klines, [line for _, _, line in liquidations]


def _liquidation_line(
    rng: random.Random, model: CoinModel, price: float, long_liquidated: bool, event_ms: int
) -> str:
    inst = model.instrument
    notional = min(MAX_NOTIONAL, _pareto(rng, model.size_scale))
    qty = max(inst.qty_step, _quantize(notional / price, inst.qty_step, ROUND_DOWN))
    # The liquidation order's limit price sits beyond the market (the bankruptcy side);
    # its average fill price is close to the market.
    offset = rng.uniform(0.004, 0.012)
    direction = -1.0 if long_liquidated else 1.0
    order_price = _quantize(price * (1.0 + direction * offset), inst.tick_size)
    average_price = _quantize(price * (1.0 + direction * rng.uniform(0.0, 0.0015)), inst.tick_size)
    steps = int(qty / inst.qty_step)
    last_filled = inst.qty_step * rng.randint(1, steps) if steps > 1 else qty
    message = {
        "e": "forceOrder",
        "E": event_ms + rng.randint(1, 15),
        "o": {
            "s": inst.symbol,
            "S": "SELL" if long_liquidated else "BUY",
            "o": "LIMIT",
            "f": "IOC",
            "q": _text(qty, inst.qty_step),
            "p": _text(order_price, inst.tick_size),
            "ap": _text(average_price, inst.tick_size),
            "X": "FILLED",
            "l": _text(last_filled, inst.qty_step),
            "z": _text(qty, inst.qty_step),
            "T": event_ms,
        },
    }
    return json.dumps(message, separators=(",", ":"))


def _kline_line(
    rng: random.Random, model: CoinModel, minute_ms: int, path: list[float], buy_share: float
) -> str:
    inst = model.instrument
    tick, step = inst.tick_size, inst.qty_step
    open_price = _quantize(path[0], tick)
    high = _quantize(max(path), tick)
    low = _quantize(min(path), tick)
    close = _quantize(path[-1], tick)
    move = abs(path[-1] / path[0] - 1.0) / (MARKET_SIGMA * math.sqrt(SECONDS_PER_MINUTE))
    average = sum(path) / len(path)
    notional = model.minute_notional * (0.5 + rng.random()) * (1.0 + 0.6 * move)
    volume = max(step, _quantize(notional / average, step, ROUND_DOWN))
    taker_buy = _quantize(
        float(volume) * min(0.95, max(0.05, buy_share + rng.uniform(-0.1, 0.1))), step, ROUND_DOWN
    )
    quote = Decimal(repr(average)) * volume
    taker_quote = Decimal(repr(average)) * taker_buy
    money_step = Decimal("0.00001")
    count = max(1, int(float(volume) * average / 2500))
    return ",".join(
        (
            str(minute_ms),
            _text(open_price, tick),
            _text(high, tick),
            _text(low, tick),
            _text(close, tick),
            _text(volume, step),
            str(minute_ms + 59_999),
            _text(_round(quote, money_step), money_step),
            str(count),
            _text(taker_buy, step),
            _text(_round(taker_quote, money_step), money_step),
            "0",
        )
    )


def write(out: Path, seed: int, hours: float, start: datetime, symbols: list[str] | None = None) -> dict:
    klines, liquidations = generate(seed, hours, start, symbols)
    (out / "klines").mkdir(parents=True, exist_ok=True)
    for symbol, lines in klines.items():
        (out / "klines" / f"{symbol}.csv").write_text("\n".join(lines) + "\n")
    (out / "liquidations.jsonl").write_text("".join(line + "\n" for line in liquidations))
    counts = {}
    for line in liquidations:
        symbol = json.loads(line)["o"]["s"]
        counts[symbol] = counts.get(symbol, 0) + 1
    (out / "README.md").write_text(_readme(seed, hours, start, klines, counts))
    return counts


def _readme(seed: int, hours: float, start: datetime, klines: dict, counts: dict) -> str:
    rows = "\n".join(
        f"| {symbol} | {len(lines) - 1} | {counts.get(symbol, 0)} |" for symbol, lines in klines.items()
    )
    start_text = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""# Synthetic replay sample (seed {seed})

Generated by `python -m simulator.sample --seed {seed} --hours {hours:g} --start {start_text} --out <dir>`.
This is **synthetic** data: a seeded model (market factor, shocks, self-exciting liquidation
cascades with heavy-tailed sizes), not a recording. The same command with the same seed writes
byte-identical files. It uses the replay layout of the simulator (`docs/simulator.md`):
`liquidations.jsonl` holds one Binance USD-M `forceOrder` message per line, `klines/SYMBOL.csv`
holds 1-minute klines in Binance's column order with the header row.

Replay it with `python -m simulator --data sample_data --speed 60`.

| symbol | kline rows | liquidations |
| --- | --- | --- |
{rows}
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator.sample", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--start", default=DEFAULT_START, help="UTC start, e.g. 2025-01-27T00:00:00Z")
    parser.add_argument("--symbols", default="", help="comma-separated subset of the default symbols")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    start = datetime.strptime(args.start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()] or None
    unknown = [s for s in symbols or [] if s not in DEFAULT_INSTRUMENTS]
    if unknown:
        parser.error(f"unknown symbols: {', '.join(unknown)}")
    counts = write(Path(args.out), args.seed, args.hours, start, symbols)
    print(f"wrote {sum(counts.values())} liquidations and {len(counts) or 0} symbols' klines to {args.out}")


if __name__ == "__main__":
    main()
