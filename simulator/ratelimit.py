"""Bybit's per-UID rate limits: a rolling one-second window per key and endpoint.

Default tier (what a fresh Bybit account gets, docs/v5/rate-limit/): 10/s for each
order-writing endpoint, 5/s for disconnected-cancel-all, 50/s for each private read
except the transaction log's 25/s.
Higher tiers raise the order-writing limit (VIP 20-60/s, PRO 200-1200/s); reads stay at
50/s unless the tier's order limit is higher.
"""

from collections import deque

WINDOW_MS = 1000

ORDER_WRITE = (
    "/v5/order/create",
    "/v5/order/amend",
    "/v5/order/cancel",
    "/v5/order/cancel-all",
    "/v5/order/create-batch",
    "/v5/order/amend-batch",
    "/v5/order/cancel-batch",
    "/v5/position/trading-stop",
    "/v5/position/set-leverage",
    "/v5/position/switch-mode",
)
DCP = ("/v5/order/disconnected-cancel-all",)

TIERS = {
    "default": 10,
    "vip0": 10,
    "vip1": 20,
    "vip2": 40,
    "vip3": 60,
    "vip4": 60,
    "vip5": 60,
    "supreme": 60,
    "pro1": 200,
    "pro2": 400,
    "pro3": 600,
    "pro4": 800,
    "pro5": 1000,
    "pro6": 1200,
}
READ_LIMIT = 50
# Reads with a limit of their own (docs/v5/rate-limit/rate-limit.mdx, "accountType=UNIFIED").
READ_LIMITS = {"/v5/account/transaction-log": 25}
DCP_LIMIT = 5


def order_limit_for_tier(tier: str) -> int | None:
    """Order-endpoint limit per second for a tier name, a plain number, or None for "off"."""
    tier = str(tier).strip().lower()
    if tier in ("off", "none", "unlimited"):
        return None
    if tier.isdigit() and int(tier) > 0:
        return int(tier)
    if tier not in TIERS:
        raise ValueError(f"unknown rate tier {tier!r}: use one of {', '.join(TIERS)}, a number, or off")
    return TIERS[tier]


class RateLimiter:
    def __init__(self, order_limit: int | None) -> None:
        self.order_limit = order_limit
        self._windows: dict[tuple[str, str], deque] = {}

    def limit_for(self, path: str) -> int | None:
        if self.order_limit is None:
            return None
        if path in ORDER_WRITE:
            return self.order_limit
        if path in DCP:
            return DCP_LIMIT
        return max(READ_LIMITS.get(path, READ_LIMIT), self.order_limit)

    def take(self, key: str, path: str, units: int, now_ms: int) -> tuple[int, int, int, int]:
        """Consume up to `units`; answer (granted, limit, remaining, reset_ms) for the headers."""
        limit = self.limit_for(path)
        if limit is None:
            return units, 100000, 100000, now_ms
        window = self._windows.get((key, path))
        if window is None:
            window = self._windows[(key, path)] = deque()
        horizon = now_ms - WINDOW_MS
        while window and window[0] <= horizon:
            window.popleft()
        granted = max(0, min(units, limit - len(window)))
        window.extend([now_ms] * granted)
        remaining = limit - len(window)
        # Bybit: the reset timestamp is "now" unless the window is full, then when it frees up.
        reset_ms = window[0] + WINDOW_MS if remaining == 0 and window else now_ms
        return granted, limit, remaining, reset_ms

    def peek(self, key: str, path: str, now_ms: int) -> tuple[int, int, int]:
        """(limit, remaining, reset_ms) without using any of the budget."""
        limit = self.limit_for(path)
        if limit is None:
            return 100000, 100000, now_ms
        window = self._windows.get((key, path), ())
        used = sum(1 for stamp in window if stamp > now_ms - WINDOW_MS)
        return limit, limit - used, now_ms

    def reset(self) -> None:
        self._windows.clear()
