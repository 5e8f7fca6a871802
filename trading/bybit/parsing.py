"""Parse venue payloads in one place: raw Bybit dicts become our types, and our numbers and times
become request values. ``""`` is "missing"; numbers are built from strings.

Strict: a row that is not an object, a missing symbol or side, a field of the wrong type, a
number that is not one (NaN, Infinity, out of range) or a negative size, a time outside the
calendar: each is a ``MalformedAnswer`` (a ``GatewayError``), never a ``KeyError``,
``ValueError`` or ``decimal.InvalidOperation`` that a caller would not expect. The engine
parses its private-stream rows with these same functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from trading.bybit.types import (
    ApiKeyInfo,
    ClosedPnl,
    CoinBalance,
    Execution,
    Kline,
    Order,
    Position,
    PublicTrade,
    Ticker,
    TransactionLogEntry,
    Wallet,
)
from trading.errors import GatewayError, MalformedAnswer
from trading.instruments import decimal_or_none
from trading.rules import Side

# The last millisecond of year 9999: later than this, datetime cannot even hold it.
_MAX_TIME_MS = 253_402_300_799_999
_Parsed = TypeVar("_Parsed")


def _refuse_malformed(parse: Callable[..., _Parsed]) -> Callable[..., _Parsed]:
    """The parsers' contract, kept even where a check below was forgotten: whatever a row holds,
    the caller sees our type or a ``MalformedAnswer``, never a stray built-in exception."""

    @functools.wraps(parse)
    def parse_or_refuse(*args: Any, **kwargs: Any) -> _Parsed:
        try:
            return parse(*args, **kwargs)
        except GatewayError:
            raise
        except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            raise MalformedAnswer(f"{parse.__name__}: {type(error).__name__}") from None

    return parse_or_refuse


def datetime_from_ms(value: Any) -> datetime | None:
    """Venue milliseconds (string or int) as aware UTC; ``""``/``"0"``/``None`` as ``None``."""
    if value in (None, "", "0") or (type(value) is int and value == 0):
        return None
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 15:
        value = int(value)
    if type(value) is not int or not 0 < value <= _MAX_TIME_MS:
        raise MalformedAnswer("a time is not venue milliseconds")
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def ms_from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return int(moment.timestamp() * 1000)


def venue_time_ms(body: Mapping[str, Any]) -> float:
    """The venue clock (ms) from ``/v5/market/time``: ``timeNano``, else ``timeSecond``, else the envelope."""
    if not isinstance(body, Mapping):
        raise MalformedAnswer("server time answer is not an object")
    result = body.get("result") or {}
    if not isinstance(result, Mapping):
        raise MalformedAnswer("server time result is not an object")
    for name, per_ms in (("timeNano", 1_000_000), ("timeSecond", None)):
        value = result.get(name)
        if value:
            if type(value) is not str or not value.isascii() or not value.isdigit() or len(value) > 20:
                raise MalformedAnswer(f"server time {name} is not a whole number")
            return int(value) / per_ms if per_ms else int(value) * 1000.0
    envelope_ms = body.get("time")
    if envelope_ms:
        if type(envelope_ms) is not int or not 0 < envelope_ms <= _MAX_TIME_MS:
            raise MalformedAnswer("server time envelope time is not venue milliseconds")
        return float(envelope_ms)
    raise MalformedAnswer("server time answer without a time")


def _row(row: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise MalformedAnswer(f"{what} row is not an object")
    return row


def _decimal(row: Mapping[str, Any], name: str) -> Decimal:
    """A signed number (PnL, balances); missing is 0."""
    parsed = decimal_or_none(row.get(name), name)
    return Decimal("0") if parsed is None else parsed


def _amount(row: Mapping[str, Any], name: str) -> Decimal:
    """A size, price or fee that cannot be negative; missing is 0."""
    parsed = _decimal(row, name)
    if parsed < 0:
        raise MalformedAnswer(f"{name} is negative")
    return parsed


def _amount_or_none(row: Mapping[str, Any], name: str) -> Decimal | None:
    parsed = decimal_or_none(row.get(name), name)
    if parsed is not None and parsed < 0:
        raise MalformedAnswer(f"{name} is negative")
    return parsed


def _price_or_none(row: Mapping[str, Any], name: str) -> Decimal | None:
    """A TP/SL/trigger price; Bybit sends ``"0"``, ``"0.00"`` or ``""`` for "not set"."""
    parsed = _amount_or_none(row, name)
    if parsed is None or parsed == 0:
        return None
    return parsed


def _text(row: Mapping[str, Any], name: str) -> str:
    """A text field; missing or ``None`` is ``""``."""
    value = row.get(name)
    if value is None:
        return ""
    if type(value) is not str:
        raise MalformedAnswer(f"{name} is not text")
    return value


def _symbol(row: Mapping[str, Any]) -> str:
    symbol = _text(row, "symbol")
    if not symbol:
        raise MalformedAnswer("row without a symbol")
    return symbol


def _side(row: Mapping[str, Any]) -> Side:
    side = row.get("side")
    if side not in ("Buy", "Sell"):
        raise MalformedAnswer("side is not Buy or Sell")
    return Side(side)


def _small_int(row: Mapping[str, Any], name: str) -> int:
    """``positionIdx`` and the like: a JSON integer or digit string; missing is 0."""
    value = row.get(name)
    if value is None or value == "":
        return 0
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    if type(value) is not int or not 0 <= value < 10**9:
        raise MalformedAnswer(f"{name} is not a small whole number")
    return value


def _flag(row: Mapping[str, Any], name: str) -> bool:
    """A JSON boolean; missing is False. Never ``bool("false")``, which is True."""
    value = row.get(name)
    if value is None:
        return False
    if type(value) is not bool:
        raise MalformedAnswer(f"{name} is not a boolean")
    return value


@_refuse_malformed
def parse_order(row: Mapping[str, Any]) -> Order:
    row = _row(row, "order")
    order_id = _text(row, "orderId")
    if not order_id:
        raise MalformedAnswer("order row without an orderId")
    return Order(
        order_id=order_id,
        order_link_id=_text(row, "orderLinkId"),
        symbol=_symbol(row),
        side=_side(row),
        order_type=_text(row, "orderType"),
        status=_text(row, "orderStatus"),
        price=_price_or_none(row, "price"),
        qty=_amount(row, "qty"),
        leaves_qty=_amount(row, "leavesQty"),
        cum_exec_qty=_amount(row, "cumExecQty"),
        cum_exec_value=_amount(row, "cumExecValue"),
        # Negative for a maker rebate.
        cum_exec_fee=_decimal(row, "cumExecFee"),
        avg_price=_price_or_none(row, "avgPrice"),
        time_in_force=_text(row, "timeInForce"),
        reduce_only=_flag(row, "reduceOnly"),
        position_idx=_small_int(row, "positionIdx"),
        take_profit=_price_or_none(row, "takeProfit"),
        stop_loss=_price_or_none(row, "stopLoss"),
        trigger_price=_price_or_none(row, "triggerPrice"),
        stop_order_type=_text(row, "stopOrderType"),
        reject_reason=_text(row, "rejectReason"),
        created_at=datetime_from_ms(row.get("createdTime")),
        updated_at=datetime_from_ms(row.get("updatedTime")),
    )


@_refuse_malformed
def parse_position(row: Mapping[str, Any]) -> Position | None:
    """A ``Position``, or ``None`` for a flat row (Bybit sends ``side ""`` and size 0 when flat)."""
    row = _row(row, "position")
    symbol = _symbol(row)
    size = _amount(row, "size")
    side = _text(row, "side")
    if size == 0:
        return None
    if side not in ("Buy", "Sell"):
        # A size on no side: the answer contradicts itself, and guessing a side could double a position.
        raise MalformedAnswer(f"{symbol} position of size {size} without a side")
    return Position(
        symbol=symbol,
        side=Side(side),
        size=size,
        position_idx=_small_int(row, "positionIdx"),
        avg_price=_amount(row, "avgPrice"),
        mark_price=_amount_or_none(row, "markPrice"),
        position_value=_amount_or_none(row, "positionValue"),
        leverage=_amount_or_none(row, "leverage"),
        liq_price=_price_or_none(row, "liqPrice"),
        unrealised_pnl=_decimal(row, "unrealisedPnl"),
        cur_realised_pnl=_decimal(row, "curRealisedPnl"),
        cum_realised_pnl=_decimal(row, "cumRealisedPnl"),
        take_profit=_price_or_none(row, "takeProfit"),
        stop_loss=_price_or_none(row, "stopLoss"),
        position_im=_amount_or_none(row, "positionIM"),
        position_mm=_amount_or_none(row, "positionMM"),
        status=_text(row, "positionStatus"),
        created_at=datetime_from_ms(row.get("createdTime")),
        updated_at=datetime_from_ms(row.get("updatedTime")),
        trailing_stop=_price_or_none(row, "trailingStop"),
    )


def im_pct_of(
    *, total_initial_margin: Decimal, total_margin_balance: Decimal | None, account_im_rate: Decimal | None
) -> Decimal:
    """The account's initial-margin ratio in percent: Bybit's ``accountIMRate`` x 100.

    ``accountIMRate`` is total initial margin over the margin balance (cross margin:
    wallet balances after each coin's haircut, plus perp UPL; Bybit's UTA glossary and
    docs/v5/account/wallet-balance.mdx), the ratio Bybit's app shows. Bybit sends it with 4
    decimals ("0.8012" = 80.12 %). Without it (``""``), the same quotient from
    ``totalInitialMargin``/``totalMarginBalance``; with no positive margin balance, 0 when no
    margin is in use and infinity otherwise (so the 100 % guard blocks).
    """
    if account_im_rate is not None:
        return account_im_rate * 100
    if total_margin_balance is not None and total_margin_balance > 0:
        return total_initial_margin / total_margin_balance * 100
    return Decimal("0") if total_initial_margin == 0 else Decimal("Infinity")


@_refuse_malformed
def parse_coin_balance(row: Mapping[str, Any]) -> CoinBalance:
    row = _row(row, "wallet coin")
    return CoinBalance(
        coin=_text(row, "coin"),
        equity=_decimal(row, "equity"),
        wallet_balance=_decimal(row, "walletBalance"),
        usd_value=decimal_or_none(row.get("usdValue"), "usdValue"),
    )


@_refuse_malformed
def parse_wallet(account: Mapping[str, Any]) -> Wallet:
    """A ``Wallet`` from ``wallet-balance`` ``list[0]`` (accountType UNIFIED), or the same object
    of the private ``wallet`` stream."""
    account = _row(account, "wallet")
    total_initial_margin = _amount(account, "totalInitialMargin")
    total_margin_balance = decimal_or_none(account.get("totalMarginBalance"), "totalMarginBalance")
    account_im_rate = _amount_or_none(account, "accountIMRate")
    coins = account.get("coin") or ()
    if not isinstance(coins, list | tuple):
        raise MalformedAnswer("wallet coin is not a list")
    return Wallet(
        total_equity=_decimal(account, "totalEquity"),
        total_wallet_balance=_decimal(account, "totalWalletBalance"),
        total_margin_balance=total_margin_balance,
        total_available_balance=decimal_or_none(
            account.get("totalAvailableBalance"), "totalAvailableBalance"
        ),
        total_initial_margin=total_initial_margin,
        total_maintenance_margin=_amount_or_none(account, "totalMaintenanceMargin"),
        total_perp_upl=decimal_or_none(account.get("totalPerpUPL"), "totalPerpUPL"),
        account_im_rate=account_im_rate,
        im_pct=im_pct_of(
            total_initial_margin=total_initial_margin,
            total_margin_balance=total_margin_balance,
            account_im_rate=account_im_rate,
        ),
        coins=tuple(parse_coin_balance(row) for row in coins if _row(row, "wallet coin").get("coin")),
    )


@_refuse_malformed
def parse_transaction_log(row: Mapping[str, Any]) -> TransactionLogEntry:
    """A row of ``/v5/account/transaction-log``. ``transactionTime`` is a string of ms (the docs'
    older example had a JSON number: both are taken)."""
    row = _row(row, "transaction log")
    entry_id = row.get("id")
    return TransactionLogEntry(
        entry_id="" if entry_id is None else str(entry_id),
        transaction_time=datetime_from_ms(row.get("transactionTime")),
        type=_text(row, "type"),
        currency=_text(row, "currency"),
        symbol=_text(row, "symbol"),
        category=_text(row, "category"),
        side=_text(row, "side") or "None",
        qty=_decimal(row, "qty"),
        size=_decimal(row, "size"),
        trade_price=_price_or_none(row, "tradePrice"),
        funding=_decimal(row, "funding"),
        fee=_decimal(row, "fee"),
        cash_flow=_decimal(row, "cashFlow"),
        change=_decimal(row, "change"),
        cash_balance=decimal_or_none(row.get("cashBalance"), "cashBalance"),
        fee_rate=decimal_or_none(row.get("feeRate"), "feeRate"),
        trade_id=_text(row, "tradeId"),
        order_id=_text(row, "orderId"),
        order_link_id=_text(row, "orderLinkId"),
        trans_sub_type=_text(row, "transSubType"),
    )


def _iso_datetime(value: Any) -> datetime | None:
    """``"2023-05-15T03:13:24Z"`` as aware UTC; ``""`` (no expiry) or anything else as ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@_refuse_malformed
def parse_api_key_info(result: Mapping[str, Any]) -> ApiKeyInfo:
    """An ``ApiKeyInfo`` from ``/v5/user/query-api``'s ``result``. ``userID`` is a JSON integer
    (a string is taken too); an answer without one is an error: the account would be unknown."""
    result = _row(result, "query-api")
    user_id = result.get("userID")
    if type(user_id) is str and user_id.isascii() and user_id.isdigit() and len(user_id) <= 20:
        user_id = int(user_id)
    if type(user_id) is not int or user_id <= 0:
        raise MalformedAnswer("query-api answered without a userID")
    permissions = result.get("permissions") or {}
    if not isinstance(permissions, Mapping) or not all(
        isinstance(grants, list) and all(type(grant) is str for grant in grants)
        for grants in permissions.values()
    ):
        raise MalformedAnswer("query-api permissions are not lists of names")
    ips = result.get("ips") or []
    if not isinstance(ips, list) or not all(type(ip) is str for ip in ips):
        raise MalformedAnswer("query-api ips are not a list of addresses")
    key_id = result.get("id")
    return ApiKeyInfo(
        user_id=user_id,
        key_id="" if key_id is None else str(key_id),
        read_only=_small_int(result, "readOnly") == 1,
        permissions={str(group): tuple(grants) for group, grants in permissions.items()},
        ips=tuple(ips),
        unified=_small_int(result, "unified") == 1 or _small_int(result, "uta") == 1,
        expires_at=_iso_datetime(result.get("expiredAt")),
    )


@_refuse_malformed
def parse_execution(row: Mapping[str, Any]) -> Execution:
    row = _row(row, "execution")
    return Execution(
        exec_id=_text(row, "execId"),
        order_id=_text(row, "orderId"),
        order_link_id=_text(row, "orderLinkId"),
        symbol=_symbol(row),
        side=_side(row),
        exec_type=_text(row, "execType"),
        exec_price=_amount(row, "execPrice"),
        exec_qty=_amount(row, "execQty"),
        exec_value=_amount(row, "execValue"),
        exec_fee=_decimal(row, "execFee"),  # negative for a maker rebate
        fee_rate=decimal_or_none(row.get("feeRate"), "feeRate"),
        is_maker=_flag(row, "isMaker"),
        closed_size=_amount_or_none(row, "closedSize"),
        exec_time=datetime_from_ms(row.get("execTime")),
    )


@_refuse_malformed
def parse_closed_pnl(row: Mapping[str, Any]) -> ClosedPnl:
    row = _row(row, "closed-pnl")
    return ClosedPnl(
        order_id=_text(row, "orderId"),
        symbol=_symbol(row),
        side=_side(row),
        qty=_amount(row, "qty"),
        closed_size=_amount(row, "closedSize"),
        avg_entry_price=_amount(row, "avgEntryPrice"),
        avg_exit_price=_amount(row, "avgExitPrice"),
        closed_pnl=_decimal(row, "closedPnl"),
        cum_entry_value=_amount_or_none(row, "cumEntryValue"),
        cum_exit_value=_amount_or_none(row, "cumExitValue"),
        leverage=_amount_or_none(row, "leverage"),
        created_at=datetime_from_ms(row.get("createdTime")),
        updated_at=datetime_from_ms(row.get("updatedTime")),
    )


@_refuse_malformed
def parse_ticker(row: Mapping[str, Any]) -> Ticker:
    row = _row(row, "ticker")
    return Ticker(
        symbol=_symbol(row),
        last_price=_amount(row, "lastPrice"),
        mark_price=_amount_or_none(row, "markPrice"),
        index_price=_amount_or_none(row, "indexPrice"),
        bid1_price=_amount_or_none(row, "bid1Price"),
        bid1_size=_amount_or_none(row, "bid1Size"),
        ask1_price=_amount_or_none(row, "ask1Price"),
        ask1_size=_amount_or_none(row, "ask1Size"),
        volume_24h=_amount_or_none(row, "volume24h"),
        turnover_24h=_amount_or_none(row, "turnover24h"),
        funding_rate=decimal_or_none(row.get("fundingRate"), "fundingRate"),
        next_funding_time=datetime_from_ms(row.get("nextFundingTime")),
        open_interest=_amount_or_none(row, "openInterest"),
    )


@_refuse_malformed
def parse_kline(row: Sequence[str]) -> Kline:
    """One ``[startTime, open, high, low, close, volume, turnover]`` row."""
    if not isinstance(row, list) or len(row) < 7:
        raise MalformedAnswer("kline row is not a list of seven values")
    start = datetime_from_ms(row[0])
    if start is None:
        raise MalformedAnswer("kline row without a start time")
    fields = dict(zip(("open", "high", "low", "close", "volume", "turnover"), row[1:7], strict=True))
    open_, high, low, close = (_amount(fields, name) for name in ("open", "high", "low", "close"))
    if min(open_, high, low, close) <= 0:
        raise MalformedAnswer("kline row with a price of 0")
    return Kline(
        start=start,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=_amount(fields, "volume"),
        turnover=_amount(fields, "turnover"),
    )


@_refuse_malformed
def parse_public_trade(row: Mapping[str, Any]) -> PublicTrade:
    row = _row(row, "trade")
    traded_at = datetime_from_ms(row.get("time"))
    if traded_at is None:
        raise MalformedAnswer("trade without a time")
    price, size = _amount(row, "price"), _amount(row, "size")
    if price <= 0 or size <= 0:
        raise MalformedAnswer("trade without a price or size")
    return PublicTrade(
        exec_id=_text(row, "execId"),
        symbol=_symbol(row),
        price=price,
        size=size,
        side=_side(row),
        time=traded_at,
    )
