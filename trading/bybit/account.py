"""The account: positions, wallet, leverage, position TP/SL, fills, closed PnL, the transaction log
and the DCP window."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from trading.bybit.http import BybitHttp
from trading.bybit.parsing import (
    ms_from_datetime,
    parse_api_key_info,
    parse_closed_pnl,
    parse_execution,
    parse_position,
    parse_transaction_log,
    parse_wallet,
)
from trading.bybit.types import (
    CATEGORY,
    SETTLE_COIN,
    ApiKeyInfo,
    ClosedPnl,
    Execution,
    Position,
    TransactionLog,
    Wallet,
)
from trading.errors import BadRequest, GatewayError, MalformedAnswer
from trading.rules import Side
from trading.rules.order_body import plain

DCP_PRODUCT = "DERIVATIVES"  # the API's default is OPTIONS, which would not cover linear
_LEVERAGE_UNCHANGED = 110043
_TRADING_STOP_UNCHANGED = 34040


class AccountCalls(BybitHttp):
    """The account calls of ``BybitGateway``, which knows ``_position_idx``."""

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
        if not isinstance(accounts, list):
            raise MalformedAnswer("wallet-balance: result.list is not a list")
        if not accounts:
            raise GatewayError(None, "wallet-balance returned no UNIFIED account")
        return parse_wallet(accounts[0])

    def api_key_info(self) -> ApiKeyInfo:
        """The key's details and its account's UID (any permission may call it)."""
        return parse_api_key_info(self._request("get_api_key_information", {}).get("result") or {})

    def set_leverage(self, *, symbol: str, leverage: Decimal) -> bool:
        """Set buy and sell leverage, equal as one-way mode requires. False if already set (110043)."""
        value = plain(leverage)
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
        trailing_stop: Decimal | None = None,
        active_price: Decimal | None = None,
        trigger_by: str = "LastPrice",
    ) -> bool:
        """Attach TP/SL and/or a trailing stop to the whole position (``tpslMode=Full``: Bybit keeps
        their size = the position's and cancels them when it closes).

        ``trailing_stop`` is a price distance (not a %): Bybit trails the best last price by it
        and closes the position at market when the price falls back that far (rises, for a
        short). ``active_price`` holds the trail back until the last price reaches it; without
        one it trails from the last price at once. A call leaves alone what it does not name
        (a TP/SL call keeps the trailing stop, and the other way round).

        Prices and the distance must be multiples of ``tickSize``; ``Decimal("0")`` removes
        one. Returns False when nothing changed: 34040 with the position already showing
        these values. 34040 otherwise is a ``BadRequest``.
        """
        if take_profit is None and stop_loss is None and trailing_stop is None:
            raise ValueError("set_trading_stop needs take_profit, stop_loss or trailing_stop")
        if active_price is not None and trailing_stop is None:
            raise ValueError("active_price belongs to a trailing_stop")
        params: dict[str, Any] = {
            "category": CATEGORY,
            "symbol": symbol,
            "tpslMode": "Full",
            "positionIdx": self._position_idx(side=position_side, reduce_only=False),
        }
        if take_profit is not None:
            params["takeProfit"] = plain(take_profit)
            params["tpTriggerBy"] = trigger_by
        if stop_loss is not None:
            params["stopLoss"] = plain(stop_loss)
            params["slTriggerBy"] = trigger_by
        if trailing_stop is not None:
            params["trailingStop"] = plain(trailing_stop)
        if active_price is not None:
            params["activePrice"] = plain(active_price)
        try:
            self._request("set_trading_stop", params)
        except GatewayError as error:
            if error.code != _TRADING_STOP_UNCHANGED:
                raise
            if self._position_shows(
                symbol=symbol,
                side=position_side,
                take_profit=take_profit,
                stop_loss=stop_loss,
                trailing_stop=trailing_stop,
            ):
                return False
            raise BadRequest(error.code, error.message) from None
        return True

    def _position_shows(
        self,
        *,
        symbol: str,
        side: Side,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        trailing_stop: Decimal | None = None,
    ) -> bool:
        for position in self.positions(symbol=symbol):
            if position.side is not side:
                continue
            # A "0" we sent means "none", which the parser also reports as None.
            tp_ok = take_profit is None or (position.take_profit or Decimal(0)) == take_profit
            sl_ok = stop_loss is None or (position.stop_loss or Decimal(0)) == stop_loss
            ts_ok = trailing_stop is None or (position.trailing_stop or Decimal(0)) == trailing_stop
            return tp_ok and sl_ok and ts_ok
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
        max_pages: int | None = 10,
    ) -> list[ClosedPnl]:
        """Realised PnL per closing order, newest first, following ``nextPageCursor`` for at most
        ``max_pages`` pages (``None``: every page). At most 7 days per query (``start`` to ``end``;
        Bybit's default is the last 7)."""
        params = _history_params(symbol=symbol, start=start, end=end, limit=limit)
        return [parse_closed_pnl(row) for row in self._paged("get_closed_pnl", params, max_pages=max_pages)]

    def transaction_log(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        currency: str | None = None,
        log_type: str | None = None,
        limit: int = 50,
        max_pages: int = 20,
    ) -> TransactionLog:
        """The unified account's transaction log (``/v5/account/transaction-log``), newest first,
        following ``nextPageCursor`` for at most ``max_pages`` pages of ``limit`` (1-50) rows.

        Every category and currency unless one is named (``log_type``: ``TRANSFER_IN``, ...).
        Bybit's window: neither bound = the last 24 hours; only ``start`` = 24 hours from it;
        only ``end`` = 24 hours up to it; both = at most 7 days apart. The answer says where
        it stopped (``next_cursor`` "" = every page read).
        """
        if not 1 <= limit <= 50:
            raise ValueError(f"limit must be 1-50, got {limit}")
        params: dict[str, Any] = {"accountType": "UNIFIED", "limit": limit}
        if start is not None:
            params["startTime"] = ms_from_datetime(start)
        if end is not None:
            params["endTime"] = ms_from_datetime(end)
        if currency:
            params["currency"] = currency
        if log_type:
            params["type"] = log_type
        rows: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(max_pages):
            page = dict(params, cursor=cursor) if cursor else params
            result = self._request("get_transaction_log", page).get("result") or {}
            rows.extend(result.get("list") or [])
            cursor = result.get("nextPageCursor") or ""
            if not cursor:
                break
        return TransactionLog(entries=tuple(parse_transaction_log(row) for row in rows), next_cursor=cursor)

    def set_dcp_window(self, *, seconds: int) -> None:
        """Set the disconnect-cancel-all window for derivatives (3-300 s).

        Only effective if Bybit switched DCP on for the account, and only
        while a private websocket subscribes to ``dcp.future``.
        """
        if not 3 <= seconds <= 300:
            raise ValueError(f"DCP window must be 3-300 s, got {seconds}")
        self._request("set_dcp", {"product": DCP_PRODUCT, "timeWindow": int(seconds)})


def _history_params(
    *, symbol: str | None, start: datetime | None, end: datetime | None, limit: int
) -> dict[str, Any]:
    params: dict[str, Any] = {"category": CATEGORY, "limit": limit}
    if symbol:
        params["symbol"] = symbol
    if start is not None:
        params["startTime"] = ms_from_datetime(start)
    if end is not None:
        params["endTime"] = ms_from_datetime(end)
    return params
