"""The plain records the invariants judge (no Django, no I/O): what the venue received and
filled, what the journal and the panel say, what the fault script did and when.

Times are wall-clock milliseconds on one machine: the simulator's `receivedNs` and fill
times, the driver's call times and the journal's rows share the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# Order prefixes (trading/rules/order_link_id.py) of orders that open or add to a position.
ENTRY_PREFIXES = ("wl-entry-", "pm-entry-", "pm-add-")
WL_ENTRY_PREFIX = "wl-entry-"


@dataclass(frozen=True)
class SentOrder:
    """One order request as the venue received it (`/sim/record` orders)."""

    link_id: str
    symbol: str
    side: str
    qty: Decimal
    reduce_only: bool
    received_ms: int
    reject_code: int | None = None  # None: accepted
    cum_qty: Decimal = Decimal("0")
    avg_price: Decimal = Decimal("0")

    @property
    def accepted(self) -> bool:
        return self.reject_code is None

    @property
    def is_entry(self) -> bool:
        return not self.reduce_only and self.link_id.startswith(ENTRY_PREFIXES)

    @property
    def is_wl_entry(self) -> bool:
        return not self.reduce_only and self.link_id.startswith(WL_ENTRY_PREFIX)


@dataclass(frozen=True)
class Fill:
    """One execution (`/sim/record` executions): one-way mode, Buy adds, Sell takes away."""

    link_id: str
    symbol: str
    side: str
    qty: Decimal
    time_ms: int
    reduce_only: bool = False
    stop_order_type: str = ""

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side == "Buy" else -self.qty


@dataclass(frozen=True)
class Window:
    """A span during which no entry may be sent: `kind` panic, halt, daily, im_block (every
    symbol) or pm (one symbol, WL entries only). `end_ms` None: still on at the end of the run."""

    kind: str
    start_ms: int
    end_ms: int | None = None
    symbol: str = ""


@dataclass(frozen=True)
class Filters:
    """An instrument's order filters (Bybit's lotSizeFilter)."""

    qty_step: Decimal
    min_qty: Decimal
    min_notional: Decimal


@dataclass(frozen=True)
class JournalRow:
    """A decision journal row that names an order (trading.models.Decision)."""

    link_id: str
    strategy: str
    symbol: str
    action: str
    outcome: str
    decision_key: str = ""  # the liquidation's event id for WL entries
    at_ms: int = 0


@dataclass(frozen=True)
class PositionRow:
    """An open position: `symbol`, `side` (Buy/Sell), `size`, and its TP/SL ("" or "0": none)."""

    symbol: str
    side: str
    size: Decimal
    take_profit: str = ""
    stop_loss: str = ""


@dataclass(frozen=True)
class ApiCall:
    """A call the fault script made to the panel: what, when it was answered, the answer."""

    name: str  # panic, reset, halt, resume, ...
    sent_ms: int
    at_ms: int  # answered
    status: int
    body: dict


@dataclass(frozen=True)
class Cascade:
    """Liquidations the script injected on one symbol, first to last (ms)."""

    symbol: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class ImSample:
    """The account's IM % as the venue showed it at `at_ms`."""

    at_ms: int
    im_pct: Decimal


@dataclass
class Check:
    """One invariant's outcome: how many things it looked at, and each violation."""

    name: str
    checked: int = 0
    violations: list[str] | None = None

    def __post_init__(self):
        if self.violations is None:
            self.violations = []

    @property
    def ok(self) -> bool:
        return not self.violations
