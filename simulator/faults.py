"""Injected faults: errors, latency, held and dropped answers, per endpoint, for the next N requests.

A fault with a `symbol` hits orders for that symbol only (order create and create-batch),
counted per order: in a batch it fails that order alone, as the venue's own per-order
refusals do.
"""

from collections import deque
from dataclasses import dataclass

MODES = ("error", "latency", "accept_then_timeout", "drop", "accept_then_drop", "drop_ws")
# Modes that cut the REST connection without an answer: before handling (nothing done) or after.
DROPS = ("drop", "accept_then_drop")
# Default hold for accept_then_timeout: past pybit's default 10 s timeout.
DEFAULT_HOLD_MS = 15_000


@dataclass
class Fault:
    endpoint: str
    mode: str
    count: int
    ret_code: int | None = None
    http_status: int | None = None
    latency_ms: int = 0
    message: str = ""
    symbol: str | None = None  # orders for this symbol only (see the module docstring)


def parse_fault(body: dict) -> Fault:
    """Validate a `/sim/fault` body; raise ValueError with a clear message."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError('endpoint is required, e.g. "/v5/order/create" or "*"')
    mode = body.get("mode", "error")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    count = body.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a non-negative integer")
    if count == 0 and mode != "drop_ws":
        raise ValueError("count must be at least 1")
    ret_code = body.get("retCode")
    http_status = body.get("httpStatus")
    latency_ms = body.get("latencyMs", 0)
    for name, value in (("retCode", ret_code), ("httpStatus", http_status), ("latencyMs", latency_ms)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer")
    if mode == "error" and ret_code is None and http_status is None:
        raise ValueError("mode error needs retCode or httpStatus")
    if mode == "latency" and not latency_ms:
        raise ValueError("mode latency needs latencyMs")
    if mode == "accept_then_timeout" and not latency_ms:
        latency_ms = DEFAULT_HOLD_MS
    message = body.get("retMsg", "")
    if not isinstance(message, str):
        raise ValueError("retMsg must be a string")
    symbol = body.get("symbol")
    if symbol is not None:
        if not isinstance(symbol, str) or not symbol:
            raise ValueError("symbol must be a symbol name")
        if mode != "error" or ret_code is None:
            raise ValueError("a symbol fault is an order refusal: mode error with a retCode")
    return Fault(endpoint, mode, count, ret_code, http_status, latency_ms or 0, message, symbol)


class FaultBook:
    def __init__(self) -> None:
        self._faults: deque[Fault] = deque()

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def take(self, endpoint: str, *, symbol: str | None = None) -> Fault | None:
        """The oldest fault for this endpoint (or "*"), counting one use of it. With `symbol`:
        the oldest fault for orders of that symbol; without: the oldest without a symbol."""
        if not self._faults:
            return None
        for fault in self._faults:
            if fault.endpoint in (endpoint, "*") and fault.symbol == symbol:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def pending(self) -> list[dict]:
        return [vars(fault).copy() for fault in self._faults]
