"""Command line of the simulator, shared by `python -m simulator` and `manage.py run_sim`."""

import argparse
from decimal import Decimal
from pathlib import Path

from .options import SimOptions, parse_speed
from .ratelimit import order_limit_for_tier


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8601, help="port for REST and websockets (default 8601)")
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="replay directory (liquidations.jsonl + klines/SYMBOL.csv); default: a still market",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="replay speed factor: 1 = real time, 10 = ten times faster, 0 or max = as fast as possible",
    )
    parser.add_argument(
        "--equity", type=_decimal, default=Decimal("10000"), help="starting USDT equity (default 10000)"
    )
    parser.add_argument(
        "--rate-tier",
        default=None,
        help="order rate limit tier: default (10/s), vip1..vip5, supreme, pro1..pro6, a number, "
        "or off (default: $SIM_RATE_TIER or default)",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        help="milliseconds added to every REST answer, like a network round trip (default 0)",
    )
    parser.add_argument(
        "--slippage",
        type=_decimal,
        default=Decimal("0.0001"),
        help="market order slippage as a fraction (default 0.0001 = 1 bp)",
    )
    parser.add_argument(
        "--dcp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether Bybit enabled Disconnect-Cancel-All for the account (default: $SIM_DCP_ENABLED "
        "or off, as on a retail account: the DCP call is refused)",
    )
    parser.add_argument(
        "--no-autostart", action="store_true", help="with --data: wait for POST /sim/replay before replaying"
    )


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"not a decimal number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number: {text!r}")
    return value


def _speed(text: str) -> float:
    try:
        return parse_speed(text)
    except ValueError:
        raise argparse.ArgumentTypeError("speed must be a number >= 0 or 'max'") from None


def options_from(namespace) -> SimOptions:
    values = vars(namespace) if not isinstance(namespace, dict) else namespace
    if values.get("data") and not Path(values["data"]).is_dir():
        raise ValueError(f"replay directory not found: {values['data']}")
    options = SimOptions(
        host=values["host"],
        port=values["port"],
        data_dir=values.get("data"),
        speed=values["speed"],
        equity=values["equity"],
        slippage=values["slippage"],
        replay_autostart=not values.get("no_autostart", False),
        latency_ms=max(0, int(values.get("latency_ms") or 0)),
    )
    if values.get("dcp") is not None:
        options.dcp_enabled = bool(values["dcp"])
    if values.get("rate_tier"):
        order_limit_for_tier(values["rate_tier"])  # ValueError with the list of tiers
        options.rate_tier = values["rate_tier"]
    return options


def main(argv=None) -> None:
    from .server import run

    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="Local Bybit V5 (and Binance liquidation stream) simulator"
    )
    add_arguments(parser)
    try:
        options = options_from(parser.parse_args(argv))
    except (ValueError, FileNotFoundError) as problem:
        parser.error(str(problem))
    run(options)
