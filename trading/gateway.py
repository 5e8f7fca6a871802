"""The Bybit V5 REST gateway: our types in, our types and errors out.

Everything that trades goes through ``BybitGateway``; nothing else imports
pybit (except ``trading.feeds`` for websockets). It points at the local
simulator, Bybit demo, testnet or mainnet; the code path is the same.

Retry policy (pybit's own retries are switched off with ``retry_codes={0}``,
a set that never matches, and ``max_retries=1``, see exchange-facts):

* Reads, cancels and idempotent settings retry on ``RetryableError``
  (10000, 10006, 10016, HTTP 429/5xx, timeouts, connection failures) with
  backoff; a rate limit waits until ``X-Bapi-Limit-Reset-Timestamp``.
* 10002 (clock outside the server's window) resyncs our clock offset from
  ``/v5/market/time`` and retries once, for every call including orders: the
  request was refused at the door, so nothing was placed.
* Order creation is never blindly retried. A timeout, connection failure,
  10000/10016 or HTTP 5xx after sending means "outcome unknown": the order is
  looked up by ``orderLinkId`` (found in any state) and resent, with the same
  id, only if it is definitely absent. 110072 (id already used) is answered
  by looking the order up and returning it. 10006 on an order is a definite
  refusal and is raised as ``RetryableError`` for the caller to decide
  (a late liquidation entry is usually a stale one).

Threads: pybit keeps one ``requests.Session`` per client and sessions are not
meant to be shared between threads, so the gateway keeps one pybit client per
thread (``threading.local``). One gateway per process is enough; it is safe to
call from several threads (e.g. ``asyncio.to_thread``). The clock offset,
position mode and instrument table are shared.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from trading.errors import (
    AuthError,
    BadRequest,
    ClockSkewError,
    DuplicateOrderLinkId,
    ExchangeUnreachable,
    GatewayError,
    OrderOutcomeUnknown,
    OrderRefused,
    OrderTooSmall,
    RetryableError,
    error_for_http_status,
    error_for_ret_code,
)
from trading.instruments import Instrument, InstrumentCache, decimal_or_none, parse_instrument
from trading.rules import Side
from trading.rules.order_link_id import is_valid_order_link_id
from trading.rules.rounding import (
    BELOW_MIN_NOTIONAL,
    BELOW_MIN_QTY,
    PRICE_OFF_TICK,
    check_order_size,
    check_price_tick,
    round_qty,
)

logger = logging.getLogger(__name__)

CATEGORY = "linear"
SETTLE_COIN = "USDT"
DEFAULT_SIM_BASE_URL = "http://127.0.0.1:8601"
BATCH_LIMIT = 20  # linear create-batch takes at most 20 orders (since Feb 2025)
INSTRUMENTS_PAGE_LIMIT = 1000  # the endpoint's maximum: fewest pages for 500+ linear symbols
DCP_PRODUCT = "DERIVATIVES"  # the API's default is OPTIONS, which would not cover linear
RATE_LIMIT_RESET_HEADER = "X-Bapi-Limit-Reset-Timestamp"

# Cancel answers that mean "nothing left to cancel": done, not a failure.
_CANCEL_DONE_CODES = frozenset({110001, 110008, 110010})
_LEVERAGE_UNCHANGED = 110043
_TRADING_STOP_UNCHANGED = 34040
_DUPLICATE_ORDER_LINK_ID = 110072
_RATE_LIMITED = 10006


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


# --------------------------------------------------------------------------
# Our types. Money and quantities are Decimal; times are aware UTC.
# --------------------------------------------------------------------------


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

    @property
    def is_long(self) -> bool:
        return self.side is Side.BUY


@dataclass(frozen=True, slots=True)
class Wallet:
    """The unified account, in USDT. ``im_pct`` is the initial-margin ratio in percent (80 = 80 %)."""

    total_equity: Decimal
    total_wallet_balance: Decimal
    total_margin_balance: Decimal | None
    total_available_balance: Decimal | None
    total_initial_margin: Decimal
    total_maintenance_margin: Decimal | None
    total_perp_upl: Decimal | None
    account_im_rate: Decimal | None  # Bybit's own ratio, a fraction (0.8 = 80 %)
    im_pct: Decimal


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


# --------------------------------------------------------------------------
# Parsing venue payloads: the one place raw dicts become our types.
# --------------------------------------------------------------------------


def datetime_from_ms(value: Any) -> datetime | None:
    """Venue milliseconds (string or int) as aware UTC; ``""``/``"0"``/``None`` as ``None``."""
    if value in (None, "", "0", 0):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _decimal(value: Any) -> Decimal:
    parsed = decimal_or_none(value)
    return Decimal("0") if parsed is None else parsed


def _price_or_none(value: Any) -> Decimal | None:
    """A TP/SL/trigger price; Bybit sends ``"0"``, ``"0.00"`` or ``""`` for "not set"."""
    parsed = decimal_or_none(value)
    if parsed is None or parsed == 0:
        return None
    return parsed


def parse_order(row: Mapping[str, Any]) -> Order:
    return Order(
        order_id=row["orderId"],
        order_link_id=row.get("orderLinkId") or "",
        symbol=row["symbol"],
        side=Side(row["side"]),
        order_type=row.get("orderType") or "",
        status=row.get("orderStatus") or "",
        price=_price_or_none(row.get("price")),
        qty=_decimal(row.get("qty")),
        leaves_qty=_decimal(row.get("leavesQty")),
        cum_exec_qty=_decimal(row.get("cumExecQty")),
        cum_exec_value=_decimal(row.get("cumExecValue")),
        cum_exec_fee=_decimal(row.get("cumExecFee")),
        avg_price=_price_or_none(row.get("avgPrice")),
        time_in_force=row.get("timeInForce") or "",
        reduce_only=bool(row.get("reduceOnly")),
        position_idx=int(row.get("positionIdx") or 0),
        take_profit=_price_or_none(row.get("takeProfit")),
        stop_loss=_price_or_none(row.get("stopLoss")),
        trigger_price=_price_or_none(row.get("triggerPrice")),
        stop_order_type=row.get("stopOrderType") or "",
        reject_reason=row.get("rejectReason") or "",
        created_at=datetime_from_ms(row.get("createdTime")),
        updated_at=datetime_from_ms(row.get("updatedTime")),
    )


def parse_position(row: Mapping[str, Any]) -> Position | None:
    """A ``Position``, or ``None`` for a flat row (Bybit sends ``side ""`` and size 0 when flat)."""
    size = _decimal(row.get("size"))
    side = row.get("side") or ""
    if size == 0 or side not in ("Buy", "Sell"):
        return None
    return Position(
        symbol=row["symbol"],
        side=Side(side),
        size=size,
        position_idx=int(row.get("positionIdx") or 0),
        avg_price=_decimal(row.get("avgPrice")),
        mark_price=decimal_or_none(row.get("markPrice")),
        position_value=decimal_or_none(row.get("positionValue")),
        leverage=decimal_or_none(row.get("leverage")),
        liq_price=_price_or_none(row.get("liqPrice")),
        unrealised_pnl=_decimal(row.get("unrealisedPnl")),
        cur_realised_pnl=_decimal(row.get("curRealisedPnl")),
        cum_realised_pnl=_decimal(row.get("cumRealisedPnl")),
        take_profit=_price_or_none(row.get("takeProfit")),
        stop_loss=_price_or_none(row.get("stopLoss")),
        position_im=decimal_or_none(row.get("positionIM")),
        position_mm=decimal_or_none(row.get("positionMM")),
        status=row.get("positionStatus") or "",
        created_at=datetime_from_ms(row.get("createdTime")),
        updated_at=datetime_from_ms(row.get("updatedTime")),
    )


def im_pct_of(
    *, total_initial_margin: Decimal, total_equity: Decimal, account_im_rate: Decimal | None
) -> Decimal:
    """Initial-margin ratio in percent: totalInitialMargin / totalEquity * 100.

    With no positive equity the quotient means nothing; fall back to Bybit's
    ``accountIMRate`` (a fraction), and if that is missing too, report 0 when
    no margin is in use and infinity otherwise (so the 100 % guard blocks).
    """
    if total_equity > 0:
        return total_initial_margin / total_equity * 100
    if account_im_rate is not None:
        return account_im_rate * 100
    return Decimal("0") if total_initial_margin == 0 else Decimal("Infinity")


def parse_wallet(account: Mapping[str, Any]) -> Wallet:
    """A ``Wallet`` from ``wallet-balance`` ``list[0]`` (accountType UNIFIED)."""
    total_equity = _decimal(account.get("totalEquity"))
    total_initial_margin = _decimal(account.get("totalInitialMargin"))
    account_im_rate = decimal_or_none(account.get("accountIMRate"))
    return Wallet(
        total_equity=total_equity,
        total_wallet_balance=_decimal(account.get("totalWalletBalance")),
        total_margin_balance=decimal_or_none(account.get("totalMarginBalance")),
        total_available_balance=decimal_or_none(account.get("totalAvailableBalance")),
        total_initial_margin=total_initial_margin,
        total_maintenance_margin=decimal_or_none(account.get("totalMaintenanceMargin")),
        total_perp_upl=decimal_or_none(account.get("totalPerpUPL")),
        account_im_rate=account_im_rate,
        im_pct=im_pct_of(
            total_initial_margin=total_initial_margin,
            total_equity=total_equity,
            account_im_rate=account_im_rate,
        ),
    )


def parse_execution(row: Mapping[str, Any]) -> Execution:
    return Execution(
        exec_id=row.get("execId") or "",
        order_id=row.get("orderId") or "",
        order_link_id=row.get("orderLinkId") or "",
        symbol=row["symbol"],
        side=Side(row["side"]),
        exec_type=row.get("execType") or "",
        exec_price=_decimal(row.get("execPrice")),
        exec_qty=_decimal(row.get("execQty")),
        exec_value=_decimal(row.get("execValue")),
        exec_fee=_decimal(row.get("execFee")),
        fee_rate=decimal_or_none(row.get("feeRate")),
        is_maker=bool(row.get("isMaker")),
        closed_size=decimal_or_none(row.get("closedSize")),
        exec_time=datetime_from_ms(row.get("execTime")),
    )


def parse_closed_pnl(row: Mapping[str, Any]) -> ClosedPnl:
    return ClosedPnl(
        order_id=row.get("orderId") or "",
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=_decimal(row.get("qty")),
        closed_size=_decimal(row.get("closedSize")),
        avg_entry_price=_decimal(row.get("avgEntryPrice")),
        avg_exit_price=_decimal(row.get("avgExitPrice")),
        closed_pnl=_decimal(row.get("closedPnl")),
        cum_entry_value=decimal_or_none(row.get("cumEntryValue")),
        cum_exit_value=decimal_or_none(row.get("cumExitValue")),
        leverage=decimal_or_none(row.get("leverage")),
        created_at=datetime_from_ms(row.get("createdTime")),
        updated_at=datetime_from_ms(row.get("updatedTime")),
    )


def parse_ticker(row: Mapping[str, Any]) -> Ticker:
    return Ticker(
        symbol=row["symbol"],
        last_price=_decimal(row.get("lastPrice")),
        mark_price=decimal_or_none(row.get("markPrice")),
        index_price=decimal_or_none(row.get("indexPrice")),
        bid1_price=decimal_or_none(row.get("bid1Price")),
        bid1_size=decimal_or_none(row.get("bid1Size")),
        ask1_price=decimal_or_none(row.get("ask1Price")),
        ask1_size=decimal_or_none(row.get("ask1Size")),
        volume_24h=decimal_or_none(row.get("volume24h")),
        turnover_24h=decimal_or_none(row.get("turnover24h")),
        funding_rate=decimal_or_none(row.get("fundingRate")),
        next_funding_time=datetime_from_ms(row.get("nextFundingTime")),
        open_interest=decimal_or_none(row.get("openInterest")),
    )


def parse_kline(row: Sequence[str]) -> Kline:
    """One ``[startTime, open, high, low, close, volume, turnover]`` row."""
    start = datetime_from_ms(row[0])
    if start is None:
        raise ValueError("kline row without a start time")
    return Kline(
        start=start,
        open=Decimal(row[1]),
        high=Decimal(row[2]),
        low=Decimal(row[3]),
        close=Decimal(row[4]),
        volume=Decimal(row[5]),
        turnover=Decimal(row[6]),
    )


def parse_public_trade(row: Mapping[str, Any]) -> PublicTrade:
    traded_at = datetime_from_ms(row.get("time"))
    if traded_at is None:
        raise ValueError("trade without a time")
    return PublicTrade(
        exec_id=row.get("execId") or "",
        symbol=row["symbol"],
        price=Decimal(row["price"]),
        size=Decimal(row["size"]),
        side=Side(row["side"]),
        time=traded_at,
    )


def _plain(value: Decimal) -> str:
    """A Decimal as Bybit wants it: plain notation, never ``1E-7``."""
    return format(value, "f")


def _reset_ms(headers: Mapping[str, str] | None) -> int | None:
    if not headers:
        return None
    raw = headers.get(RATE_LIMIT_RESET_HEADER)
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


# --------------------------------------------------------------------------
# pybit with a corrected clock
# --------------------------------------------------------------------------


class _ClockOffset:
    """Milliseconds to add to the local clock to get the venue's; shared by every thread's client."""

    __slots__ = ("ms",)

    def __init__(self) -> None:
        self.ms = 0


class _ClockCorrectedHTTP(HTTP):
    """pybit's HTTP client, signing with local time + the venue clock offset.

    pybit 5.17.0 stamps ``X-BAPI-TIMESTAMP`` with the raw local clock inside
    ``_prepare_headers`` and offers no hook for an offset. Bybit refuses a
    timestamp that is >= 1 s ahead of its clock whatever the recv_window
    (10002), so resyncing needs our own timestamp. This override repeats
    pybit's header set exactly; pybit is pinned in requirements.txt, so
    re-check this method when upgrading it.
    """

    clock_offset: _ClockOffset

    def _prepare_headers(self, payload, recv_window, content_type="application/json"):
        timestamp = int(time.time() * 1000) + self.clock_offset.ms
        signature = self._auth(payload=payload, recv_window=recv_window, timestamp=timestamp)
        return {
            "Content-Type": content_type,
            "X-BAPI-API-KEY": self.api_key,
            "X-BAPI-SIGN": signature,
            "X-BAPI-SIGN-TYPE": "2",
            "X-BAPI-TIMESTAMP": str(timestamp),
            "X-BAPI-RECV-WINDOW": str(recv_window),
        }


# --------------------------------------------------------------------------
# The gateway
# --------------------------------------------------------------------------


class BybitGateway:
    """Bybit V5 (linear USDT perpetuals, unified account) through pybit. See the module docstring."""

    def __init__(
        self,
        *,
        mode: ExchangeMode | str,
        api_key: str | None,
        api_secret: str | None,
        base_url: str | None = None,
        timeout: float = 10.0,
        recv_window_ms: int = 5000,
        dcp_window_s: int = 0,
        position_mode: PositionMode | str | None = None,
        max_attempts: int = 4,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 2.0,
    ) -> None:
        """``base_url`` is required for (and only used by) ``sim`` mode.

        ``position_mode`` ``None`` detects it from the venue on first need.
        ``max_attempts`` bounds tries of a retryable read/cancel (1 = no retry).
        ``dcp_window_s`` 0 leaves disconnect-cancel alone; 3-300 is set by ``prepare()``.
        """
        self.mode = ExchangeMode(mode)
        if self.mode is ExchangeMode.SIM and not base_url:
            raise ValueError("sim mode needs base_url")
        if dcp_window_s and not 3 <= dcp_window_s <= 300:
            raise ValueError(f"dcp_window_s must be 0 (off) or 3-300, got {dcp_window_s}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._api_key = api_key or None
        self._api_secret = api_secret or None
        self.base_url = base_url.rstrip("/") if self.mode is ExchangeMode.SIM and base_url else None
        self.timeout = timeout
        self.recv_window_ms = recv_window_ms
        self.dcp_window_s = dcp_window_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._position_mode = PositionMode(position_mode) if position_mode else None
        self._clock_offset = _ClockOffset()
        self._local = threading.local()
        self.instruments = InstrumentCache(load=self.fetch_instruments)

    def __repr__(self) -> str:  # never show keys
        return f"BybitGateway(mode={self.mode.value!r}, endpoint={self.endpoint!r})"

    @classmethod
    def from_settings(cls, **overrides: Any) -> BybitGateway:
        """A gateway configured from Django settings (``EXCHANGE_MODE`` etc.).

        Fails loudly when a non-sim mode has no key or secret.
        """
        from django.conf import settings

        mode = ExchangeMode(getattr(settings, "EXCHANGE_MODE", ExchangeMode.SIM.value))
        if mode is ExchangeMode.SIM:
            api_key = getattr(settings, "SIM_API_KEY", "sim-api-key")
            api_secret = getattr(settings, "SIM_API_SECRET", "sim-api-secret")
            base_url = getattr(settings, "SIM_BASE_URL", DEFAULT_SIM_BASE_URL)
        else:
            api_key = getattr(settings, "BYBIT_API_KEY", "")
            api_secret = getattr(settings, "BYBIT_API_SECRET", "")
            base_url = None
            if not api_key or not api_secret:
                raise AuthError(None, f"BYBIT_API_KEY and BYBIT_API_SECRET are required in {mode.value} mode")
        default_dcp = 10 if mode is ExchangeMode.LIVE else 0
        options: dict[str, Any] = {
            "mode": mode,
            "api_key": api_key,
            "api_secret": api_secret,
            "base_url": base_url,
            "timeout": float(getattr(settings, "BYBIT_HTTP_TIMEOUT_S", 10.0)),
            "dcp_window_s": int(getattr(settings, "BYBIT_DCP_WINDOW_S", default_dcp)),
            "position_mode": getattr(settings, "BYBIT_POSITION_MODE", None) or None,
        }
        options.update(overrides)
        return cls(**options)

    # -- plumbing -----------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self._client().endpoint

    def _client(self) -> _ClockCorrectedHTTP:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._new_client()
            self._local.client = client
        return client

    def _new_client(self) -> _ClockCorrectedHTTP:
        client = _ClockCorrectedHTTP(
            testnet=self.mode is ExchangeMode.TESTNET,
            demo=self.mode is ExchangeMode.DEMO,
            api_key=self._api_key,
            api_secret=self._api_secret,
            timeout=self.timeout,
            recv_window=self.recv_window_ms,
            # We retry ourselves; a non-empty set that never matches disables
            # pybit's retries (an empty set is silently replaced by its defaults).
            retry_codes={0},
            max_retries=1,
            return_response_headers=True,
        )
        client.clock_offset = self._clock_offset
        if self.base_url:
            # pybit builds every URL from ``endpoint`` at call time.
            client.endpoint = self.base_url
        # requests re-reads proxy settings from the whole environment on every call
        # (about 0.3 ms of a 0.7 ms local order, measured): read them once, here.
        session = client.client
        session.proxies.update(requests.utils.get_environ_proxies(client.endpoint))
        session.trust_env = False
        return client

    def _call_once(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One pybit call, its failures translated to our errors. Returns the whole JSON envelope."""
        try:
            body, _elapsed, _headers = getattr(self._client(), method)(**params)
        except InvalidRequestError as exc:
            raise error_for_ret_code(
                exc.status_code, exc.message, retry_at_ms=_reset_ms(exc.resp_headers)
            ) from None
        except FailedRequestError as exc:
            if exc.resp_headers is None:
                # pybit's own failure with no HTTP answer behind it (a body that was not JSON).
                raise ExchangeUnreachable(None, "answer was not JSON") from None
            raise error_for_http_status(exc.status_code, retry_at_ms=_reset_ms(exc.resp_headers)) from None
        except requests.RequestException as exc:
            # Timeouts, refused/reset connections, truncated bodies: no usable answer.
            raise ExchangeUnreachable(None, f"no answer: {type(exc).__name__}") from None
        except PermissionError:
            # pybit raises this before sending when keys are missing.
            raise AuthError(None, "this call needs an API key and secret") from None
        return body

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """``_call_once`` with our policy: resync the clock once on 10002; back off and retry retryables."""
        attempt = 0
        clock_resynced = False
        while True:
            attempt += 1
            try:
                return self._call_once(method, params)
            except ClockSkewError:
                if clock_resynced:
                    raise
                clock_resynced = True
                self.sync_clock()
            except RetryableError as error:
                if attempt >= self.max_attempts:
                    raise
                delay = self._retry_delay_s(error, attempt)
                logger.warning(
                    "gateway_retry method=%s code=%s attempt=%d delay_s=%.3f",
                    method,
                    error.code,
                    attempt,
                    delay,
                )
                time.sleep(delay)

    def _retry_delay_s(self, error: RetryableError, attempt: int) -> float:
        """A rate limit waits until the venue's reset stamp; anything else backs off exponentially. Capped."""
        if error.code == _RATE_LIMITED and error.retry_at_ms is not None:
            venue_now_ms = time.time() * 1000 + self._clock_offset.ms
            # +10 ms: the reset stamp is when the window rolls, be just past it.
            delay = (error.retry_at_ms - venue_now_ms + 10) / 1000
        else:
            delay = self.backoff_base_s * (2 ** (attempt - 1))
        return min(max(delay, 0.01), self.backoff_cap_s)

    def _paged(
        self, method: str, params: dict[str, Any], *, max_pages: int | None = None
    ) -> list[dict[str, Any]]:
        """Every ``result.list`` row, following ``nextPageCursor`` until it is empty."""
        rows: list[dict[str, Any]] = []
        cursor = None
        pages = 0
        while True:
            page_params = dict(params)
            if cursor:
                page_params["cursor"] = cursor
            result = self._request(method, page_params).get("result") or {}
            rows.extend(result.get("list") or [])
            pages += 1
            cursor = result.get("nextPageCursor") or None
            if not cursor or (max_pages is not None and pages >= max_pages):
                return rows

    # -- start-up -------------------------------------------------------------

    def prepare(self) -> None:
        """Do the slow, one-off work before trading: clock, instruments, position mode, DCP window.

        Call it once at process start so the first order pays none of it.
        """
        self.sync_clock()
        self.instruments.refresh()
        self.position_mode()
        if self.dcp_window_s:
            self.set_dcp_window(seconds=self.dcp_window_s)

    def sync_clock(self) -> int:
        """Measure the venue clock offset from ``/v5/market/time``; returns it in ms.

        The offset is taken against the moment the answer *arrived*, so our
        corrected clock errs behind the venue (tolerated by recv_window), never
        ahead (refused at >= 1 s).
        """
        body = self._call_once("get_server_time", {})
        received_ms = time.time() * 1000
        venue_ms = _venue_time_ms(body)
        offset = int(venue_ms - received_ms)
        if abs(offset - self._clock_offset.ms) > 500:
            logger.info("gateway_clock_resync offset_ms=%d previous_ms=%d", offset, self._clock_offset.ms)
        self._clock_offset.ms = offset
        return offset

    @property
    def clock_offset_ms(self) -> int:
        return self._clock_offset.ms

    def position_mode(self) -> PositionMode:
        """The account's position mode, from the constructor or detected once from the venue.

        Bybit has no "get mode" call; a position query for one symbol returns
        its rows even when flat: one row with positionIdx 0 in one-way mode,
        rows with 1 and 2 in hedge mode.
        """
        if self._position_mode is None:
            symbols = self.instruments.symbols()
            symbol = "BTCUSDT" if "BTCUSDT" in symbols or not symbols else symbols[0]
            params = {"category": CATEGORY, "symbol": symbol}
            result = self._request("get_positions", params).get("result") or {}
            indexes = {int(row.get("positionIdx") or 0) for row in result.get("list") or []}
            self._position_mode = PositionMode.HEDGE if indexes & {1, 2} else PositionMode.ONE_WAY
        return self._position_mode

    def _position_idx(self, *, side: Side, reduce_only: bool) -> int:
        if self._position_mode is None:
            self.position_mode()
        if self._position_mode is PositionMode.ONE_WAY:
            return 0
        # Hedge: 1 is the long side, 2 the short side. A Buy opens a long and a
        # reduce-only Buy closes a short.
        return 1 if (side is Side.BUY) != reduce_only else 2

    # -- market data (public) -----------------------------------------------

    def server_time(self) -> datetime:
        return datetime.fromtimestamp(_venue_time_ms(self._request("get_server_time", {})) / 1000, tz=UTC)

    def fetch_instruments(self) -> list[Instrument]:
        """Every linear instrument, all pages. Use ``self.instruments`` (the cache) for lookups."""
        rows = self._paged("get_instruments_info", {"category": CATEGORY, "limit": INSTRUMENTS_PAGE_LIMIT})
        return [parse_instrument(row) for row in rows]

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments.get(symbol)

    def tickers(self, *, symbol: str | None = None) -> list[Ticker]:
        params: dict[str, Any] = {"category": CATEGORY}
        if symbol:
            params["symbol"] = symbol
        result = self._request("get_tickers", params).get("result") or {}
        return [parse_ticker(row) for row in result.get("list") or []]

    def klines(
        self,
        *,
        symbol: str,
        interval: str = "1",
        limit: int = 200,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Kline]:
        """Candles **oldest first** (Bybit sends newest first; we reverse so indicators read forward).

        The newest candle may still be open (its close is the last price).
        """
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": symbol,
            "interval": str(interval),
            "limit": limit,
        }
        if start is not None:
            params["start"] = _ms(start)
        if end is not None:
            params["end"] = _ms(end)
        result = self._request("get_kline", params).get("result") or {}
        candles = [parse_kline(row) for row in result.get("list") or []]
        candles.sort(key=lambda candle: candle.start)
        return candles

    def recent_trades(self, *, symbol: str, limit: int = 60) -> list[PublicTrade]:
        result = (
            self._request(
                "get_public_trade_history", {"category": CATEGORY, "symbol": symbol, "limit": limit}
            ).get("result")
            or {}
        )
        return [parse_public_trade(row) for row in result.get("list") or []]

    # -- orders -------------------------------------------------------------

    def place_order(
        self,
        *,
        symbol: str,
        side: Side,
        qty: Decimal,
        order_link_id: str,
        order_type: OrderType = OrderType.MARKET,
        price: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        reduce_only: bool = False,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
        reference_price: Decimal | None = None,
    ) -> OrderAck:
        """Place one order; returns the acknowledgement (fills come later).

        ``qty`` in base coin, already a multiple of ``qtyStep`` (round with
        ``trading.rules.rounding.round_qty``); ``price`` (limit only) and
        TP/SL already multiples of ``tickSize``. ``reference_price`` is the
        price a market order was decided at, required for an opening market
        order so the minimum notional is checked here instead of at the venue.
        ``positionIdx`` follows the account's position mode.

        Raises ``OrderTooSmall``/``OrderRefused`` before sending, an
        ``OrderRejected`` subclass when the venue refuses, ``RetryableError``
        on 10006, ``OrderOutcomeUnknown`` when neither the answer nor a lookup
        settles it.
        """
        params = self._order_params(
            symbol=symbol,
            side=side,
            qty=qty,
            order_link_id=order_link_id,
            order_type=order_type,
            price=price,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            take_profit=take_profit,
            stop_loss=stop_loss,
            reference_price=reference_price,
        )
        return self._submit_order(params)

    def _order_params(
        self,
        *,
        symbol: str,
        side: Side,
        qty: Decimal,
        order_link_id: str,
        order_type: OrderType,
        price: Decimal | None,
        time_in_force: TimeInForce | None,
        reduce_only: bool,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        reference_price: Decimal | None,
    ) -> dict[str, Any]:
        """Validate an order against the instrument and build its request body (raises before sending)."""
        if not is_valid_order_link_id(order_link_id):
            raise ValueError(f"orderLinkId must be 1-36 characters of A-Z a-z 0-9 - _, got {order_link_id!r}")
        side = Side(side)
        instrument = self.instruments.get(symbol)
        is_market = order_type is OrderType.MARKET
        if is_market:
            if price is not None:
                raise ValueError("a market order takes no price; pass reference_price")
            if reference_price is None and not reduce_only:
                raise ValueError("an opening market order needs reference_price for the notional check")
        else:
            if price is None:
                raise ValueError("a limit order needs a price")
            if check_price_tick(price=price, tick_size=instrument.tick_size):
                raise OrderRefused(PRICE_OFF_TICK, f"{symbol} price {price} off tick {instrument.tick_size}")
        if reduce_only and (take_profit is not None or stop_loss is not None):
            raise ValueError("a reduce-only order cannot carry TP/SL")
        reason = check_order_size(
            qty=qty,
            price=reference_price if is_market else price,
            limits=instrument,
            is_market=is_market,
            reduce_only=reduce_only,
        )
        if reason is not None:
            if reason in (BELOW_MIN_QTY, BELOW_MIN_NOTIONAL):
                raise OrderTooSmall(reason, f"{symbol} {side} {qty}: {reason}")
            raise OrderRefused(reason, f"{symbol} {side} {qty}: {reason}")
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": symbol,
            "side": side.value,
            "orderType": order_type.value,
            "qty": _plain(qty),
            "orderLinkId": order_link_id,
            "positionIdx": self._position_idx(side=side, reduce_only=reduce_only),
        }
        if price is not None:
            params["price"] = _plain(price)
        if time_in_force is not None:
            params["timeInForce"] = time_in_force.value
        if reduce_only:
            params["reduceOnly"] = True
        for name, value in (("takeProfit", take_profit), ("stopLoss", stop_loss)):
            if value is not None:
                if check_price_tick(price=value, tick_size=instrument.tick_size):
                    message = f"{symbol} {name} {value} off tick {instrument.tick_size}"
                    raise OrderRefused(PRICE_OFF_TICK, message)
                params[name] = _plain(value)
        return params

    def _submit_order(self, params: dict[str, Any]) -> OrderAck:
        """Send an order body; settle an unknown outcome by ``orderLinkId``, never by a blind resend."""
        symbol = params["symbol"]
        order_link_id = params["orderLinkId"]
        clock_resynced = False
        resent = False
        while True:
            try:
                result = self._call_once("place_order", params).get("result") or {}
                return OrderAck(result.get("orderId", ""), result.get("orderLinkId") or order_link_id, symbol)
            except ClockSkewError:
                # Refused at the door (bad timestamp): nothing was placed, safe to resend once.
                if clock_resynced:
                    raise
                clock_resynced = True
                self.sync_clock()
                continue
            except GatewayError as error:
                if error.code == _DUPLICATE_ORDER_LINK_ID:
                    existing = self._look_up_sent_order(params)
                    if existing is None:
                        # The id is taken but no order shows under it yet (Bybit creates
                        # orders asynchronously): don't guess, reconcile later.
                        raise OrderOutcomeUnknown(
                            f"orderLinkId {order_link_id} is taken but no order shows under it",
                            order_link_id=order_link_id,
                        ) from None
                    return existing
                if not isinstance(error, RetryableError) or error.code == _RATE_LIMITED:
                    raise
                outcome_error = error
            # Timeout, connection failure, 10000/10016 or 5xx: the order may have landed.
            logger.warning(
                "order_outcome_unknown symbol=%s order_link_id=%s code=%s resent=%s",
                symbol,
                order_link_id,
                outcome_error.code,
                resent,
            )
            existing = self._look_up_sent_order(params)
            if existing is not None:
                return existing
            if resent:
                raise OrderOutcomeUnknown(
                    f"order {order_link_id} got no answer twice and is not on the venue",
                    order_link_id=order_link_id,
                )
            resent = True  # definitely absent: resend under the same id (110072 guards a late landing)

    def _look_up_sent_order(self, params: Mapping[str, Any]) -> OrderAck | None:
        """The order sent with ``params`` if the venue has it, checked to be the same order."""
        order_link_id = params["orderLinkId"]
        try:
            existing = self.get_order(order_link_id=order_link_id, symbol=params["symbol"])
        except GatewayError as lookup_error:
            raise OrderOutcomeUnknown(
                f"order {order_link_id}: lookup failed ({lookup_error})", order_link_id=order_link_id
            ) from None
        if existing is None:
            return None
        # A reduce-only qty is cut to the position size by the venue (and "0" means
        # close-all), so only an opening order's qty must match exactly.
        qty_must_match = not params.get("reduceOnly")
        if (
            existing.symbol != params["symbol"]
            or existing.side.value != params["side"]
            or (qty_must_match and existing.qty != Decimal(params["qty"]))
        ):
            raise DuplicateOrderLinkId(
                _DUPLICATE_ORDER_LINK_ID,
                f"orderLinkId {order_link_id} belongs to another order "
                f"({existing.symbol} {existing.side} {existing.qty})",
            )
        logger.info(
            "order_recovered symbol=%s order_link_id=%s order_id=%s",
            existing.symbol,
            order_link_id,
            existing.order_id,
        )
        return OrderAck(existing.order_id, order_link_id, existing.symbol, recovered=True)

    def place_orders_batch(self, *, orders: Sequence[OrderRequest]) -> list[BatchItemResult]:
        """Place many orders, 20 per request; one result per input, in input order.

        Orders we refuse before sending come back with their ``OrderRefused``
        and are not sent. The venue checks each order separately (the
        envelope says OK even when all fail); a batch larger than the rate
        budget left in the second fails its excess orders with 10006, so size
        batches to what you can afford. Per-order 110072 and an unanswered
        request are settled by ``orderLinkId`` as in ``place_order``.
        """
        results: dict[int, BatchItemResult] = {}
        to_send: list[tuple[int, dict[str, Any]]] = []
        for index, order in enumerate(orders):
            try:
                params = self._order_params(
                    symbol=order.symbol,
                    side=order.side,
                    qty=order.qty,
                    order_link_id=order.order_link_id,
                    order_type=order.order_type,
                    price=order.price,
                    time_in_force=order.time_in_force,
                    reduce_only=order.reduce_only,
                    take_profit=order.take_profit,
                    stop_loss=order.stop_loss,
                    reference_price=order.reference_price,
                )
            except GatewayError as refusal:
                results[index] = BatchItemResult(order.order_link_id, None, refusal)
                continue
            to_send.append((index, params))
        for start in range(0, len(to_send), BATCH_LIMIT):
            chunk = to_send[start : start + BATCH_LIMIT]
            results.update(self._submit_batch_chunk(chunk))
        return [results[index] for index in range(len(orders))]

    def _submit_batch_chunk(self, chunk: list[tuple[int, dict[str, Any]]]) -> dict[int, BatchItemResult]:
        results: dict[int, BatchItemResult] = {}
        pending = chunk
        resent = False
        clock_resynced = False
        while pending:
            # Batch items carry no category: it is given once for the request.
            request = [{k: v for k, v in params.items() if k != "category"} for _, params in pending]
            try:
                body = self._call_once("place_batch_order", {"category": CATEGORY, "request": request})
            except ClockSkewError:
                if clock_resynced:
                    raise
                clock_resynced = True
                self.sync_clock()
                continue
            except GatewayError as error:
                if not isinstance(error, RetryableError) or error.code == _RATE_LIMITED:
                    for index, params in pending:
                        results[index] = BatchItemResult(params["orderLinkId"], None, error)
                    return results
                # No answer: learn order by order what landed.
                still_absent = []
                for index, params in pending:
                    try:
                        existing = self._look_up_sent_order(params)
                    except GatewayError as lookup_error:
                        results[index] = BatchItemResult(params["orderLinkId"], None, lookup_error)
                        continue
                    if existing is not None:
                        results[index] = BatchItemResult(params["orderLinkId"], existing, None)
                    else:
                        still_absent.append((index, params))
                if resent:
                    for index, params in still_absent:
                        results[index] = BatchItemResult(
                            params["orderLinkId"],
                            None,
                            OrderOutcomeUnknown(
                                "batch got no answer twice", order_link_id=params["orderLinkId"]
                            ),
                        )
                    return results
                resent = True
                pending = still_absent
                continue
            acks = (body.get("result") or {}).get("list") or []
            statuses = (body.get("retExtInfo") or {}).get("list") or []
            for position, (index, params) in enumerate(pending):
                order_link_id = params["orderLinkId"]
                status = statuses[position] if position < len(statuses) else {"code": 0}
                ack = acks[position] if position < len(acks) else {}
                code = int(status.get("code") or 0)
                if code == 0 and ack.get("orderId"):
                    placed_id = ack.get("orderLinkId") or order_link_id
                    placed = OrderAck(ack["orderId"], placed_id, params["symbol"])
                    results[index] = BatchItemResult(order_link_id, placed, None)
                    continue
                error = (
                    error_for_ret_code(code, status.get("msg") or "")
                    if code
                    else GatewayError(None, "batch answer without an orderId")
                )
                if code == _DUPLICATE_ORDER_LINK_ID:
                    try:
                        existing = self._look_up_sent_order(params)
                    except GatewayError as lookup_error:
                        error = lookup_error
                    else:
                        if existing is not None:
                            results[index] = BatchItemResult(order_link_id, existing, None)
                            continue
                        error = OrderOutcomeUnknown(
                            f"orderLinkId {order_link_id} is taken but no order shows under it",
                            order_link_id=order_link_id,
                        )
                results[index] = BatchItemResult(order_link_id, None, error)
            return results
        return results

    def close_position(self, *, position: Position, order_link_id: str) -> OrderAck:
        """Close ``position`` with a reduce-only market order on the opposite side.

        The qty is the position's exact size rounded down to ``qtyStep`` and
        the ``positionIdx`` is the position's own, so 110017 cannot come from
        our arithmetic, only from a position that changed since it was read.
        Dust below ``minOrderQty`` (which no ordinary order could close) is
        closed with Bybit's ``qty="0"`` + ``reduceOnly`` + ``closeOnTrigger``,
        which closes whatever the position holds.
        """
        if not is_valid_order_link_id(order_link_id):
            raise ValueError(f"orderLinkId must be 1-36 characters of A-Z a-z 0-9 - _, got {order_link_id!r}")
        instrument = self.instruments.get(position.symbol)
        qty = round_qty(position.size, instrument.qty_step)
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": position.symbol,
            "side": position.side.opposite.value,
            "orderType": OrderType.MARKET.value,
            "qty": _plain(qty),
            "orderLinkId": order_link_id,
            "positionIdx": position.position_idx,
            "reduceOnly": True,
        }
        if check_order_size(qty=qty, price=None, limits=instrument, is_market=True, reduce_only=True):
            params["qty"] = "0"
            params["closeOnTrigger"] = True
        return self._submit_order(params)

    def cancel_order(
        self, *, symbol: str, order_link_id: str | None = None, order_id: str | None = None
    ) -> bool:
        """Cancel one order. True if this call cancelled it, False if it was already gone.

        "Already gone" is 110001/110008/110010: filled, cancelled or never there.
        """
        if not (order_link_id or order_id):
            raise ValueError("cancel_order needs order_link_id or order_id")
        params: dict[str, Any] = {"category": CATEGORY, "symbol": symbol}
        if order_id:
            params["orderId"] = order_id
        else:
            params["orderLinkId"] = order_link_id
        try:
            self._request("cancel_order", params)
        except GatewayError as error:
            if error.code in _CANCEL_DONE_CODES:
                return False
            raise
        return True

    def cancel_all_orders(self, *, symbol: str | None = None, ordinary_only: bool = False) -> list[OrderRef]:
        """Cancel every open order on USDT perps (or one ``symbol``); returns what was cancelled.

        Without ``ordinary_only`` this also cancels conditional and TP/SL
        orders (what panic wants); ``ordinary_only=True`` sends
        ``orderFilter=Order`` and keeps protective stops.
        """
        params: dict[str, Any] = {"category": CATEGORY}
        if symbol:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        if ordinary_only:
            params["orderFilter"] = "Order"
        try:
            result = self._request("cancel_all_orders", params).get("result") or {}
        except GatewayError as error:
            if error.code in _CANCEL_DONE_CODES:
                return []
            raise
        rows = result.get("list") or []
        return [OrderRef(row.get("orderId") or "", row.get("orderLinkId") or "") for row in rows]

    def open_orders(self, *, symbol: str | None = None) -> list[Order]:
        """Open orders (all pages) on USDT perps or one symbol."""
        params: dict[str, Any] = {"category": CATEGORY, "limit": 50}
        if symbol:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        return [parse_order(row) for row in self._paged("get_open_orders", params)]

    def get_order(self, *, order_link_id: str, symbol: str | None = None) -> Order | None:
        """The order with this ``orderLinkId`` in any state, or ``None`` if the venue has never seen it.

        ``/v5/order/realtime`` ignores ``openOnly`` when given an
        ``orderLinkId``; after a Bybit restart closed orders live only in
        ``/v5/order/history``, so that is asked second.
        """
        params: dict[str, Any] = {"category": CATEGORY, "orderLinkId": order_link_id}
        if symbol:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        for method in ("get_open_orders", "get_order_history"):
            result = self._request(method, params).get("result") or {}
            for row in result.get("list") or []:
                if row.get("orderLinkId") == order_link_id:
                    return parse_order(row)
        return None

    # -- positions and account ---------------------------------------------

    def positions(self, *, symbol: str | None = None) -> list[Position]:
        """Open positions (all pages); flat rows are dropped."""
        params: dict[str, Any] = {"category": CATEGORY, "limit": 200}
        if symbol:
            params["symbol"] = symbol
        else:
            params["settleCoin"] = SETTLE_COIN
        parsed = (parse_position(row) for row in self._paged("get_positions", params))
        return [position for position in parsed if position is not None]

    def wallet(self) -> Wallet:
        result = self._request("get_wallet_balance", {"accountType": "UNIFIED"}).get("result") or {}
        accounts = result.get("list") or []
        if not accounts:
            raise GatewayError(None, "wallet-balance returned no UNIFIED account")
        return parse_wallet(accounts[0])

    def set_leverage(self, *, symbol: str, leverage: Decimal) -> bool:
        """Set buy and sell leverage, equal as one-way mode requires. False if already set (110043)."""
        value = _plain(leverage)
        try:
            self._request(
                "set_leverage",
                {"category": CATEGORY, "symbol": symbol, "buyLeverage": value, "sellLeverage": value},
            )
        except GatewayError as error:
            if error.code == _LEVERAGE_UNCHANGED:
                return False
            raise
        return True

    def set_trading_stop(
        self,
        *,
        symbol: str,
        position_side: Side,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
        trigger_by: str = "LastPrice",
    ) -> bool:
        """Attach TP/SL to the whole position (``tpslMode=Full``: Bybit keeps their size = the position's).

        Prices must be multiples of ``tickSize`` (round with
        ``round_take_profit``/``round_stop_loss``); ``Decimal("0")`` removes
        one. Returns False when nothing changed: 34040 with the position
        already showing these values. 34040 otherwise is a ``BadRequest``.
        """
        if take_profit is None and stop_loss is None:
            raise ValueError("set_trading_stop needs take_profit or stop_loss")
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": symbol,
            "tpslMode": "Full",
            "positionIdx": self._position_idx(side=position_side, reduce_only=False),
        }
        if take_profit is not None:
            params["takeProfit"] = _plain(take_profit)
            params["tpTriggerBy"] = trigger_by
        if stop_loss is not None:
            params["stopLoss"] = _plain(stop_loss)
            params["slTriggerBy"] = trigger_by
        try:
            self._request("set_trading_stop", params)
        except GatewayError as error:
            if error.code != _TRADING_STOP_UNCHANGED:
                raise
            if self._position_shows(
                symbol=symbol, side=position_side, take_profit=take_profit, stop_loss=stop_loss
            ):
                return False
            raise BadRequest(error.code, error.message) from None
        return True

    def _position_shows(
        self, *, symbol: str, side: Side, take_profit: Decimal | None, stop_loss: Decimal | None
    ) -> bool:
        for position in self.positions(symbol=symbol):
            if position.side is not side:
                continue
            # A "0" we sent means "none", which the parser also reports as None.
            tp_ok = take_profit is None or (position.take_profit or Decimal(0)) == take_profit
            sl_ok = stop_loss is None or (position.stop_loss or Decimal(0)) == stop_loss
            return tp_ok and sl_ok
        return False

    def executions(
        self,
        *,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        max_pages: int = 10,
    ) -> list[Execution]:
        """Fills, newest first. Bybit spans at most 7 days per query (default: the last 7)."""
        params = _history_params(symbol=symbol, start=start, end=end, limit=limit)
        return [parse_execution(row) for row in self._paged("get_executions", params, max_pages=max_pages)]

    def closed_pnl(
        self,
        *,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        max_pages: int = 10,
    ) -> list[ClosedPnl]:
        """Realised PnL per closed position, newest first; at most 7 days per query."""
        params = _history_params(symbol=symbol, start=start, end=end, limit=limit)
        return [parse_closed_pnl(row) for row in self._paged("get_closed_pnl", params, max_pages=max_pages)]

    def set_dcp_window(self, *, seconds: int) -> None:
        """Set the disconnect-cancel-all window for derivatives (3-300 s).

        Only effective if Bybit switched DCP on for the account, and only
        while a private websocket subscribes to ``dcp.future``.
        """
        if not 3 <= seconds <= 300:
            raise ValueError(f"DCP window must be 3-300 s, got {seconds}")
        self._request("set_dcp", {"product": DCP_PRODUCT, "timeWindow": int(seconds)})


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return int(moment.timestamp() * 1000)


def _history_params(
    *, symbol: str | None, start: datetime | None, end: datetime | None, limit: int
) -> dict[str, Any]:
    params: dict[str, Any] = {"category": CATEGORY, "limit": limit}
    if symbol:
        params["symbol"] = symbol
    if start is not None:
        params["startTime"] = _ms(start)
    if end is not None:
        params["endTime"] = _ms(end)
    return params


def _venue_time_ms(body: Mapping[str, Any]) -> float:
    """The venue clock (ms) from ``/v5/market/time``: ``timeNano``, else ``timeSecond``, else the envelope."""
    result = body.get("result") or {}
    if result.get("timeNano"):
        return int(result["timeNano"]) / 1_000_000
    if result.get("timeSecond"):
        return int(result["timeSecond"]) * 1000.0
    if body.get("time"):
        return float(body["time"])
    raise GatewayError(None, "server time answer without a time")


__all__ = [
    "BATCH_LIMIT",
    "BatchItemResult",
    "BybitGateway",
    "ClosedPnl",
    "ExchangeMode",
    "Execution",
    "Kline",
    "Order",
    "OrderAck",
    "OrderRef",
    "OrderRequest",
    "OrderType",
    "Position",
    "PositionMode",
    "PublicTrade",
    "Side",
    "Ticker",
    "TimeInForce",
    "Wallet",
]
