"""Parse venue payloads in one place: raw Bybit dicts become our types, and our numbers and times
become request values. ``""`` is "missing"; numbers are built from strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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
from trading.errors import GatewayError
from trading.instruments import decimal_or_none
from trading.rules import Side


def datetime_from_ms(value: Any) -> datetime | None:
    """Venue milliseconds (string or int) as aware UTC; ``""``/``"0"``/``None`` as ``None``."""
    if value in (None, "", "0", 0):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def ms_from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return int(moment.timestamp() * 1000)


def venue_time_ms(body: Mapping[str, Any]) -> float:
    """The venue clock (ms) from ``/v5/market/time``: ``timeNano``, else ``timeSecond``, else the envelope."""
    result = body.get("result") or {}
    if result.get("timeNano"):
        return int(result["timeNano"]) / 1_000_000
    if result.get("timeSecond"):
        return int(result["timeSecond"]) * 1000.0
    if body.get("time"):
        return float(body["time"])
    raise GatewayError(None, "server time answer without a time")


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
        trailing_stop=_price_or_none(row.get("trailingStop")),
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


def parse_coin_balance(row: Mapping[str, Any]) -> CoinBalance:
    return CoinBalance(
        coin=row.get("coin") or "",
        equity=_decimal(row.get("equity")),
        wallet_balance=_decimal(row.get("walletBalance")),
        usd_value=decimal_or_none(row.get("usdValue")),
    )


def parse_wallet(account: Mapping[str, Any]) -> Wallet:
    """A ``Wallet`` from ``wallet-balance`` ``list[0]`` (accountType UNIFIED), or the same object
    of the private ``wallet`` stream."""
    total_initial_margin = _decimal(account.get("totalInitialMargin"))
    total_margin_balance = decimal_or_none(account.get("totalMarginBalance"))
    account_im_rate = decimal_or_none(account.get("accountIMRate"))
    return Wallet(
        total_equity=_decimal(account.get("totalEquity")),
        total_wallet_balance=_decimal(account.get("totalWalletBalance")),
        total_margin_balance=total_margin_balance,
        total_available_balance=decimal_or_none(account.get("totalAvailableBalance")),
        total_initial_margin=total_initial_margin,
        total_maintenance_margin=decimal_or_none(account.get("totalMaintenanceMargin")),
        total_perp_upl=decimal_or_none(account.get("totalPerpUPL")),
        account_im_rate=account_im_rate,
        im_pct=im_pct_of(
            total_initial_margin=total_initial_margin,
            total_margin_balance=total_margin_balance,
            account_im_rate=account_im_rate,
        ),
        coins=tuple(parse_coin_balance(row) for row in account.get("coin") or () if row.get("coin")),
    )


def parse_transaction_log(row: Mapping[str, Any]) -> TransactionLogEntry:
    """A row of ``/v5/account/transaction-log``. ``transactionTime`` is a string of ms (the docs'
    older example had a JSON number: both are taken)."""
    return TransactionLogEntry(
        entry_id=str(row.get("id") or ""),
        transaction_time=datetime_from_ms(row.get("transactionTime")),
        type=row.get("type") or "",
        currency=row.get("currency") or "",
        symbol=row.get("symbol") or "",
        category=row.get("category") or "",
        side=row.get("side") or "None",
        qty=_decimal(row.get("qty")),
        size=_decimal(row.get("size")),
        trade_price=_price_or_none(row.get("tradePrice")),
        funding=_decimal(row.get("funding")),
        fee=_decimal(row.get("fee")),
        cash_flow=_decimal(row.get("cashFlow")),
        change=_decimal(row.get("change")),
        cash_balance=decimal_or_none(row.get("cashBalance")),
        fee_rate=decimal_or_none(row.get("feeRate")),
        trade_id=row.get("tradeId") or "",
        order_id=row.get("orderId") or "",
        order_link_id=row.get("orderLinkId") or "",
        trans_sub_type=row.get("transSubType") or "",
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


def parse_api_key_info(result: Mapping[str, Any]) -> ApiKeyInfo:
    """An ``ApiKeyInfo`` from ``/v5/user/query-api``'s ``result``. ``userID`` is a JSON integer
    (a string is taken too); an answer without one is an error: the account would be unknown."""
    try:
        user_id = int(result.get("userID"))
    except (TypeError, ValueError):
        raise GatewayError(None, "query-api answered without a userID") from None
    permissions = result.get("permissions") or {}
    return ApiKeyInfo(
        user_id=user_id,
        key_id=str(result.get("id") or ""),
        read_only=int(result.get("readOnly") or 0) == 1,
        permissions={str(group): tuple(grants or ()) for group, grants in permissions.items()},
        ips=tuple(result.get("ips") or ()),
        unified=int(result.get("unified") or 0) == 1 or int(result.get("uta") or 0) == 1,
        expires_at=_iso_datetime(result.get("expiredAt")),
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
