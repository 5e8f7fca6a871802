"""Our types for the Bybit adapter: the enums we send and the dataclasses every call returns.

Money and quantities are Decimal; times are aware UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trading.errors import GatewayError
from trading.rules import Side
from trading.rules.order_body import CATEGORY as CATEGORY  # what we trade: linear USDT perpetuals

SETTLE_COIN = "USDT"


class ExchangeMode(enum.StrEnum):
    SIM = "sim"
    DEMO = "demo"
    TESTNET = "testnet"
    LIVE = "live"


class PositionMode(enum.StrEnum):
    ONE_WAY = "one_way"  # positionIdx 0
    HEDGE = "hedge"  # positionIdx 1 long side, 2 short side


class OrderType(enum.StrEnum):
    MARKET = "Market"
    LIMIT = "Limit"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "PostOnly"


@dataclass(frozen=True, slots=True)
class OrderAck:
    """The venue took the order (an acknowledgement: fills arrive later).

    ``recovered`` is True when the order was found by ``orderLinkId`` after a
    timeout or a 110072 rather than acknowledged by this call's answer.
    """

    order_id: str
    order_link_id: str
    symbol: str
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class OrderRef:
    order_id: str
    order_link_id: str


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order for ``place_orders_batch``; the fields mean what ``place_order``'s arguments mean."""

    symbol: str
    side: Side
    qty: Decimal
    order_link_id: str
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    reduce_only: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    reference_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """Bybit's rate-limit headers of one answer, for the endpoint that answered.

    ``limit`` (``X-Bapi-Limit``) per rolling second; ``remaining`` (``X-Bapi-Limit-Status``)
    after this request; ``reset_at_ms`` (``X-Bapi-Limit-Reset-Timestamp``, the venue's clock):
    when the window frees up if ``remaining`` is 0, otherwise just "now". ``None``: not sent.
    """

    limit: int | None
    remaining: int | None
    reset_at_ms: int | None


@dataclass(frozen=True, slots=True)
class BatchItemResult:
    """One order's fate in a batch: ``ack`` when placed, ``error`` when refused (by us or the venue)."""

    order_link_id: str
    ack: OrderAck | None
    error: GatewayError | None

    @property
    def ok(self) -> bool:
        return self.error is None


_OPEN_ORDER_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered", "Created", "Active"})


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    order_link_id: str
    symbol: str
    side: Side
    order_type: str
    status: str
    price: Decimal | None
    qty: Decimal
    leaves_qty: Decimal
    cum_exec_qty: Decimal
    cum_exec_value: Decimal
    cum_exec_fee: Decimal
    avg_price: Decimal | None
    time_in_force: str
    reduce_only: bool
    position_idx: int
    take_profit: Decimal | None
    stop_loss: Decimal | None
    trigger_price: Decimal | None
    stop_order_type: str
    reject_reason: str
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN_ORDER_STATUSES


@dataclass(frozen=True, slots=True)
class Position:
    """An open position. ``side`` Buy = long, Sell = short; ``size`` is always positive (base coin)."""

    symbol: str
    side: Side
    size: Decimal
    position_idx: int
    avg_price: Decimal
    mark_price: Decimal | None
    position_value: Decimal | None
    leverage: Decimal | None
    liq_price: Decimal | None  # Bybit sends "" when the estimate is out of range
    unrealised_pnl: Decimal
    cur_realised_pnl: Decimal
    cum_realised_pnl: Decimal
    take_profit: Decimal | None  # None when no TP is set (Bybit sends "0" or "")
    stop_loss: Decimal | None
    position_im: Decimal | None
    position_mm: Decimal | None
    status: str
    created_at: datetime | None
    updated_at: datetime | None
    # Bybit's trailing stop on the position, a price distance; None when none is set ("0").
    trailing_stop: Decimal | None = None

    @property
    def is_long(self) -> bool:
        return self.side is Side.BUY


@dataclass(frozen=True, slots=True)
class CoinBalance:
    """One coin of the unified wallet: amounts in the coin, ``usd_value`` in USD."""

    coin: str
    equity: Decimal
    wallet_balance: Decimal
    usd_value: Decimal | None

    @property
    def usd_price(self) -> Decimal | None:
        """The coin's USD price as the wallet values it (None when it holds none)."""
        if self.usd_value is None or self.equity == 0:
            return None
        return self.usd_value / self.equity


@dataclass(frozen=True, slots=True)
class Wallet:
    """The unified account, in USD (our equity figures call it USDT).

    ``im_pct`` is Bybit's own ``accountIMRate`` in percent (80 = 80 %): total initial margin
    over the *margin balance* (coins after their haircut, plus perp UPL), the figure Bybit's
    app shows and acts on, not initial margin over ``total_equity``; they differ on an
    account holding coins other than USDT.
    """

    total_equity: Decimal
    total_wallet_balance: Decimal
    total_margin_balance: Decimal | None
    total_available_balance: Decimal | None
    total_initial_margin: Decimal
    total_maintenance_margin: Decimal | None
    total_perp_upl: Decimal | None
    account_im_rate: Decimal | None  # Bybit's own ratio, a fraction (0.8 = 80 %)
    im_pct: Decimal
    coins: tuple[CoinBalance, ...] = ()

    def usd_prices(self) -> dict[str, Decimal]:
        """Coin -> USD price, for the coins the wallet holds."""
        return {coin.coin: price for coin in self.coins if (price := coin.usd_price) is not None}


@dataclass(frozen=True, slots=True)
class TransactionLogEntry:
    """One row of ``/v5/account/transaction-log`` (UTA): a cash change of one coin.

    ``cash_flow`` (realised PnL, a transfer; no fees), ``change`` (= cashFlow + funding - fee)
    and ``cash_balance`` (the coin's wallet balance after it) are in ``currency``.
    """

    entry_id: str
    transaction_time: datetime | None
    type: str  # TRADE, SETTLEMENT, TRANSFER_IN, TRANSFER_OUT, ... (docs/v5/enum.mdx#typeuta-translog)
    currency: str
    symbol: str
    category: str
    side: str  # "Buy", "Sell" or "None"
    qty: Decimal
    size: Decimal
    trade_price: Decimal | None
    funding: Decimal
    fee: Decimal
    cash_flow: Decimal
    change: Decimal
    cash_balance: Decimal | None
    fee_rate: Decimal | None
    trade_id: str
    order_id: str
    order_link_id: str
    trans_sub_type: str = ""


@dataclass(frozen=True, slots=True)
class TransactionLog:
    """Transaction log rows, newest first. ``next_cursor`` is "" when every page was read, else
    where a later call would go on (the reader stopped at its page limit)."""

    entries: tuple[TransactionLogEntry, ...]
    next_cursor: str = ""


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """The API key's own details (``/v5/user/query-api``), never its secret.

    ``user_id`` is the Bybit UID of the account the key belongs to (a sub-account has its
    own); ``permissions`` maps a group (``ContractTrade``, ``Derivatives``...) to its grants.
    """

    user_id: int
    key_id: str
    read_only: bool
    permissions: dict[str, tuple[str, ...]]
    ips: tuple[str, ...]
    unified: bool
    expires_at: datetime | None

    def account_id(self, mode: ExchangeMode | str) -> str:
        """Which account the figures belong to: the mode and the UID, ``"live:53888001"``."""
        return f"{ExchangeMode(mode).value}:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Execution:
    exec_id: str
    order_id: str
    order_link_id: str
    symbol: str
    side: Side
    exec_type: str
    exec_price: Decimal
    exec_qty: Decimal
    exec_value: Decimal
    exec_fee: Decimal
    fee_rate: Decimal | None
    is_maker: bool
    closed_size: Decimal | None
    exec_time: datetime | None


@dataclass(frozen=True, slots=True)
class ClosedPnl:
    order_id: str
    symbol: str
    side: Side  # the side of the closing order: Sell closed a long
    qty: Decimal
    closed_size: Decimal
    avg_entry_price: Decimal
    avg_exit_price: Decimal
    closed_pnl: Decimal
    cum_entry_value: Decimal | None
    cum_exit_value: Decimal | None
    leverage: Decimal | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    last_price: Decimal
    mark_price: Decimal | None
    index_price: Decimal | None
    bid1_price: Decimal | None
    bid1_size: Decimal | None
    ask1_price: Decimal | None
    ask1_size: Decimal | None
    volume_24h: Decimal | None
    turnover_24h: Decimal | None
    funding_rate: Decimal | None
    next_funding_time: datetime | None
    open_interest: Decimal | None


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle. ``volume`` in base coin, ``turnover`` in USDT."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal


@dataclass(frozen=True, slots=True)
class PublicTrade:
    exec_id: str
    symbol: str
    price: Decimal
    size: Decimal
    side: Side  # the taker's side
    time: datetime
