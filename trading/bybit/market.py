"""Public market data: server time, instruments, tickers, candles and recent trades."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from trading.bybit.http import BybitHttp
from trading.bybit.parsing import (
    ms_from_datetime,
    parse_kline,
    parse_public_trade,
    parse_ticker,
    venue_time_ms,
)
from trading.bybit.types import CATEGORY, Kline, PublicTrade, Ticker
from trading.errors import MalformedAnswer
from trading.instruments import Instrument, InstrumentCache, parse_instrument

logger = logging.getLogger(__name__)

INSTRUMENTS_PAGE_LIMIT = 1000  # the endpoint's maximum: fewest pages for 500+ linear symbols


class MarketCalls(BybitHttp):
    """The market-data calls of ``BybitGateway`` (which builds ``instruments``)."""

    instruments: InstrumentCache

    def server_time(self) -> datetime:
        return datetime.fromtimestamp(venue_time_ms(self._request("get_server_time", {})) / 1000, tz=UTC)

    def fetch_instruments(self) -> list[Instrument]:
        """Every linear instrument, all pages. Use ``self.instruments`` (the cache) for lookups.

        A row the parser refuses (no positive step, tick or minimum) is left out and logged: that
        one symbol is then unknown, which the engine skips, instead of no symbol at all."""
        rows = self._paged("get_instruments_info", {"category": CATEGORY, "limit": INSTRUMENTS_PAGE_LIMIT})
        instruments = []
        for row in rows:
            try:
                instruments.append(parse_instrument(row))
            except MalformedAnswer as error:
                symbol = row.get("symbol") if isinstance(row, dict) else None
                logger.warning("instrument_malformed symbol=%s error=%s", str(symbol)[:40], error)
        return instruments

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
            params["start"] = ms_from_datetime(start)
        if end is not None:
            params["end"] = ms_from_datetime(end)
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
