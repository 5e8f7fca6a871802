"""The venue's state: orders, positions, executions, closed PnL and the account, with Bybit's enums.

Plain records; the `Exchange` (exchange.py) and its parts change them, payloads.py shows them.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from .numbers import ZERO
from .rules import BUY, SELL

# Order statuses (docs/v5/enum.mdx#orderstatus)
NEW = "New"
PARTIALLY_FILLED = "PartiallyFilled"
FILLED = "Filled"
CANCELLED = "Cancelled"
REJECTED = "Rejected"
UNTRIGGERED = "Untriggered"
TRIGGERED = "Triggered"
DEACTIVATED = "Deactivated"
OPEN_STATUSES = frozenset((NEW, PARTIALLY_FILLED, UNTRIGGERED))

MARKET = "Market"
LIMIT = "Limit"
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly")
TRIGGER_BY = ("LastPrice", "MarkPrice", "IndexPrice")
TAKE_PROFIT = "TakeProfit"
STOP_LOSS = "StopLoss"
TRAILING_STOP = "TrailingStop"
MAX_ACTIVE_ORDERS = 500
ONE_WAY = 0
HEDGE = 3
CLOSED_ORDERS_KEPT = 500


@dataclass
class VenueConfig:
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.00055")
    slippage: Decimal = Decimal("0.0001")  # 1 basis point against the taker
    default_leverage: Decimal = Decimal("10")
    equity: Decimal = Decimal("10000")


@dataclass(slots=True, eq=False)
class Order:
    order_id: str
    order_link_id: str
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal
    time_in_force: str
    position_idx: int
    reduce_only: bool
    close_on_trigger: bool
    created_ms: int
    received_ns: int
    status: str = NEW
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    closed_pnl: Decimal = ZERO
    updated_ms: int = 0
    stop_order_type: str = ""
    trigger_price: Decimal = ZERO
    trigger_direction: int = 0
    trigger_by: str = ""
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    tp_trigger_by: str = ""
    sl_trigger_by: str = ""
    tpsl_mode: str = ""
    create_type: str = "CreateByUser"
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    last_price_on_created: Decimal = ZERO
    reject_code: int | None = None
    # Full-mode TP/SL orders follow the position's size, so their qty shows "0".
    follows_position: bool = False
    # A trailing stop (trailing.py): its price distance, the activePrice it waits for, and
    # whether it trails yet (without an activePrice: from the start).
    trail_distance: Decimal = ZERO
    trail_active_price: Decimal = ZERO
    trail_armed: bool = False

    @property
    def leaves_qty(self) -> Decimal:
        if self.status not in OPEN_STATUSES:
            return ZERO
        return self.qty - self.cum_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_value / self.cum_qty if self.cum_qty else ZERO

    @property
    def is_conditional(self) -> bool:
        return self.stop_order_type != ""


@dataclass(slots=True, eq=False)
class Position:
    symbol: str
    position_idx: int
    created_ms: int
    updated_ms: int
    size: Decimal = ZERO  # signed: long positive, short negative
    avg_price: Decimal = ZERO
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    tp_trigger_by: str = "LastPrice"
    sl_trigger_by: str = "LastPrice"
    cur_realised: Decimal = ZERO
    cum_realised: Decimal = ZERO
    open_fee: Decimal = ZERO  # fees paid to open what is held, shared out on closes
    seq: int = 0
    tp_order: Order | None = None
    sl_order: Order | None = None
    # The trailing stop (trailing.py): its distance ("trailingStop"), activePrice and order.
    trailing_stop: Decimal = ZERO
    active_price: Decimal = ZERO
    ts_order: Order | None = None

    @property
    def side(self) -> str:
        if self.size > 0:
            return BUY
        if self.size < 0:
            return SELL
        return ""

    @property
    def value(self) -> Decimal:
        return abs(self.size) * self.avg_price


@dataclass(slots=True)
class Execution:
    exec_id: str
    order: Order
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_rate: Decimal
    is_maker: bool
    closed_size: Decimal
    exec_pnl: Decimal
    time_ms: int
    mark_price: Decimal
    leaves_qty: Decimal
    seq: int


@dataclass(slots=True)
class ClosedPnl:
    order: Order
    symbol: str
    side: str  # the closing order's side
    qty: Decimal  # the closing order's qty
    closed_size: Decimal
    avg_entry: Decimal
    avg_exit: Decimal
    closed_pnl: Decimal
    leverage: Decimal
    time_ms: int


@dataclass
class WalletTotals:
    wallet_balance: Decimal
    unrealised: Decimal
    margin_balance: Decimal
    position_im: Decimal
    order_im: Decimal
    maintenance: Decimal
    available: Decimal
    cum_realised: Decimal

    @property
    def initial_margin(self) -> Decimal:
        return self.position_im + self.order_im

    @property
    def im_rate(self) -> Decimal:
        return self.initial_margin / self.margin_balance if self.margin_balance > 0 else ZERO

    @property
    def mm_rate(self) -> Decimal:
        return self.maintenance / self.margin_balance if self.margin_balance > 0 else ZERO


@dataclass
class Account:
    wallet_balance: Decimal
    cum_realised: Decimal = ZERO
    positions: dict = field(default_factory=dict)  # (symbol, idx) -> Position
    leverage: dict = field(default_factory=dict)  # symbol -> Decimal
    hedge_symbols: set = field(default_factory=set)
    orders: dict = field(default_factory=dict)  # order_id -> Order
    open_orders: dict = field(default_factory=dict)  # symbol -> {order_id: Order}
    by_link_id: dict = field(default_factory=dict)  # orderLinkId -> Order
    executions: list = field(default_factory=list)
    closed_pnls: list = field(default_factory=list)
    received: list = field(default_factory=list)  # every order request, in arrival order
    dcp_windows: dict = field(default_factory=dict)  # product -> seconds
