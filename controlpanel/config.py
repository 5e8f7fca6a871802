"""Boot-time configuration rules: pure functions over the environment.

Settings import these so a bad value stops every process at start with a clear
message, instead of surfacing later as a failed order.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

EXCHANGE_MODES = ("sim", "demo", "testnet", "live")
LIQUIDATION_FEEDS = ("sim", "binance", "bybit")
DEFAULT_CLIENT_NETWORKS = "127.0.0.1/32,::1/128"


class ConfigError(ValueError):
    """A configuration value that must be fixed before anything starts."""


@dataclass(frozen=True)
class ExchangeConfig:
    mode: str
    api_key: str
    api_secret: str
    liquidation_feed: str


def exchange_config(*, mode: str, api_key: str, api_secret: str, liquidation_feed: str) -> ExchangeConfig:
    """Check the venue settings together: a real venue needs both keys."""
    mode = (mode or "sim").strip().lower()
    if mode not in EXCHANGE_MODES:
        raise ConfigError(f"EXCHANGE_MODE={mode!r} is not one of {', '.join(EXCHANGE_MODES)}.")
    feed = (liquidation_feed or "sim").strip().lower()
    if feed not in LIQUIDATION_FEEDS:
        raise ConfigError(f"LIQUIDATION_FEED={feed!r} is not one of {', '.join(LIQUIDATION_FEEDS)}.")
    if mode != "sim" and not (api_key and api_secret):
        # Never fall back to the simulator silently: the owner asked for a real venue.
        raise ConfigError(
            f"EXCHANGE_MODE={mode} needs BYBIT_API_KEY and BYBIT_API_SECRET in the environment "
            f"(or .env); refusing to start without them."
        )
    if mode != "sim" and feed == "sim":
        raise ConfigError(
            f"LIQUIDATION_FEED=sim only works with EXCHANGE_MODE=sim; use binance or bybit for {mode}."
        )
    return ExchangeConfig(mode=mode, api_key=api_key, api_secret=api_secret, liquidation_feed=feed)


def client_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse ALLOWED_CLIENT_NETWORKS: comma-separated CIDRs or single addresses."""
    networks = []
    for part in (value or DEFAULT_CLIENT_NETWORKS).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"ALLOWED_CLIENT_NETWORKS: {part!r} is not an IP address or network.") from None
    if not networks:
        raise ConfigError("ALLOWED_CLIENT_NETWORKS is empty; nobody could reach the panel.")
    return tuple(networks)


def telegram_chat_ids(value: str) -> frozenset[int]:
    """Parse TELEGRAM_ALLOWED_CHAT_IDS: comma-separated integers (group ids are negative)."""
    chat_ids = set()
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            chat_ids.add(int(part))
        except ValueError:
            raise ConfigError(f"TELEGRAM_ALLOWED_CHAT_IDS: {part!r} is not a chat id (an integer).") from None
    return frozenset(chat_ids)


def telegram_user_ids(value: str) -> frozenset[int]:
    """Parse TELEGRAM_ALLOWED_USER_IDS: comma-separated user ids (positive integers); empty: any user."""
    user_ids = set()
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            user_id = int(part)
        except ValueError:
            user_id = 0
        if user_id <= 0:
            raise ConfigError(
                f"TELEGRAM_ALLOWED_USER_IDS: {part!r} is not a user id (a positive integer; "
                "a negative id is a group: it belongs in TELEGRAM_ALLOWED_CHAT_IDS)."
            )
        user_ids.add(user_id)
    return frozenset(user_ids)
