"""The simulator's start options (`SimOptions`, from the command line or a test) and the
replay speed's parser; the environment gives the keys, the rate tier and whether the
account has DCP."""

import os
from dataclasses import dataclass, field
from decimal import Decimal

from .numbers import parse_decimal
from .ratelimit import order_limit_for_tier

DEFAULT_API_KEY = "sim-api-key"
DEFAULT_API_SECRET = "sim-api-secret"


def parse_speed(value) -> float:
    """Replay speed factor; 0, "0" and "max" mean as fast as possible (returned as 0.0)."""
    if isinstance(value, str) and value.strip().lower() == "max":
        return 0.0
    speed = float(value)
    if speed < 0:
        raise ValueError("speed must be >= 0 or 'max'")
    return speed


@dataclass
class SimOptions:
    host: str = "127.0.0.1"
    port: int = 8601
    data_dir: str | None = None
    speed: float = 1.0  # replay speed factor; 0 = as fast as possible
    equity: Decimal = Decimal("10000")
    api_key: str = field(default_factory=lambda: os.environ.get("SIM_API_KEY", DEFAULT_API_KEY))
    api_secret: str = field(default_factory=lambda: os.environ.get("SIM_API_SECRET", DEFAULT_API_SECRET))
    rate_tier: str = field(default_factory=lambda: os.environ.get("SIM_RATE_TIER", "default"))
    # Added to every REST answer (public and private), as a network round trip would be.
    latency_ms: int = 0
    slippage: Decimal = Decimal("0.0001")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.00055")
    default_leverage: Decimal = Decimal("10")
    replay_autostart: bool = True
    # Bybit batches allLiquidation every 500 ms; 0 pushes each liquidation at once.
    liquidation_batch_ms: int = 500
    # The still market prints one trade per symbol this often, for a steady volume; like a
    # liquid Bybit market, its tickers then never go quiet for longer than the engine allows.
    still_trade_interval_ms: int = 1_000
    still_minute_notional: Decimal = Decimal("100000")
    backfill_minutes: int = 24 * 60
    # Whether Bybit switched Disconnect-Cancel-All on for the account. Off, as on a retail
    # account: POST /v5/order/disconnected-cancel-all is refused (see rest_trade.py).
    dcp_enabled: bool = field(default_factory=lambda: _env_flag("SIM_DCP_ENABLED"))

    def __post_init__(self) -> None:
        for name in (
            "equity",
            "slippage",
            "maker_fee",
            "taker_fee",
            "default_leverage",
            "still_minute_notional",
        ):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                setattr(self, name, parse_decimal(str(value), name))
        self.speed = parse_speed(self.speed)
        order_limit_for_tier(self.rate_tier)  # fail at start on a bad tier name


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be true or false, got {value!r}")
