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


# Transaction log types (docs/v5/enum.mdx#typeuta-translog): money moved into or out of
# the unified wallet, and trades.
TRANSFER_IN = "TRANSFER_IN"
TRANSFER_OUT = "TRANSFER_OUT"
TRADE = "TRADE"
SETTLE_COIN = "USDT"


@dataclass(slots=True)
class LogEntry:
    """One row of ``/v5/account/transaction-log``: a cash change of one coin of the wallet.

    ``cash_flow`` is signed (a transfer out or a realised loss is negative); Bybit's
    ``change`` = cashFlow + funding - fee; ``cash_balance`` is the coin's wallet balance after it.
    """

    entry_id: str
    time_ms: int
    type: str
    currency: str
    cash_flow: Decimal
    cash_balance: Decimal
    fee: Decimal = ZERO
    funding: Decimal = ZERO
    symbol: str = ""
    category: str = ""  # "" for wallet transfers: they belong to no product
    side: str = "None"
    qty: Decimal = ZERO
    size: Decimal = ZERO  # the position after a trade, signed (a short is negative)
    trade_price: Decimal = ZERO
    fee_rate: Decimal | None = None
    trade_id: str = ""
    order_id: str = ""
    order_link_id: str = ""

    @property
    def change(self) -> Decimal:
        return self.cash_flow + self.funding - self.fee


@dataclass(slots=True)
class Collateral:
    """A coin other than USDT in the wallet: its amount, its USD price and its collateral value
    ratio (1 - haircut: what a USD of it counts for as margin, Bybit's ``collateralRatio``)."""

    coin: str
    amount: Decimal
    usd_price: Decimal
    collateral_ratio: Decimal

    @property
    def usd_value(self) -> Decimal:
        return self.amount * self.usd_price

    @property
    def margin_value(self) -> Decimal:
        return self.usd_value * self.collateral_ratio


@dataclass
class WalletTotals:
    """The unified account in USD. ``wallet_balance`` and ``unrealised`` are USDT's (the perps
    settle in it); the other coins (``collateral``) count at their USD value in the equity
    and after their haircut in the margin balance, as Bybit's cross margin does."""

    wallet_balance: Decimal
    unrealised: Decimal
    margin_balance: Decimal
    position_im: Decimal
    order_im: Decimal
    maintenance: Decimal
    available: Decimal
    cum_realised: Decimal
    collateral: tuple[Collateral, ...] = ()

    @property
    def usdt_equity(self) -> Decimal:
        return self.wallet_balance + self.unrealised

    @property
    def collateral_usd(self) -> Decimal:
        return sum((coin.usd_value for coin in self.collateral), ZERO)

    @property
    def collateral_margin(self) -> Decimal:
        return sum((coin.margin_value for coin in self.collateral), ZERO)

    @property
    def total_equity(self) -> Decimal:
        """Every coin at its USD value, no haircut (Bybit's totalEquity)."""
        return self.usdt_equity + self.collateral_usd

    @property
    def total_wallet_balance(self) -> Decimal:
        """Wallet balances in USD after the haircut (Bybit's totalWalletBalance)."""
        return self.wallet_balance + self.collateral_margin

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
    transaction_log: list = field(default_factory=list)  # LogEntry, oldest first
    collateral: dict = field(default_factory=dict)  # coin -> Collateral (coins other than USDT)
