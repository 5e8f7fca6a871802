"""Bybit V5 public REST: market data (time, instruments, tickers, klines, recent trades).

Each endpoint takes the simulator and the query and returns Bybit's `result`; rest.py wraps it.
"""

import time

from . import params as p
from . import payloads
from .errors import PARAMS_ERROR, SimError
from .market import INTERVALS
from .simulator import Simulator


def market_time(sim: Simulator, request: dict) -> dict:
    now_ns = time.time_ns()
    return {"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)}


def instruments_info(sim: Simulator, request: dict) -> dict:
    p.linear_category(request)
    symbol = p.text(request, "symbol")
    status = p.text(request, "status")
    base_coin = p.text(request, "baseCoin")
    limit, offset = p.page(request, default=500, maximum=1000)
    rows = [
        inst
        for inst in sim.market.instruments.values()
        if (not symbol or inst.symbol == symbol)
        and (not base_coin or inst.base_coin == base_coin)
        and (not status or status == "Trading")
    ]
    chunk, cursor = p.paginate(rows, limit, offset)
    return {
        "category": "linear",
        "list": [payloads.instrument_row(inst) for inst in chunk],
        "nextPageCursor": cursor,
    }


def tickers(sim: Simulator, request: dict) -> dict:
    p.linear_category(request)
    symbol = p.text(request, "symbol")
    if symbol:
        sim.exchange.instrument(request)
    symbols = [symbol] if symbol else list(sim.market.instruments)
    now = sim.clock.now_ms()
    return {"category": "linear", "list": [payloads.ticker_row(sim.exchange, s, now) for s in symbols]}


def kline(sim: Simulator, request: dict) -> dict:
    category = p.text(request, "category", default="linear")
    if category != "linear":
        raise SimError(PARAMS_ERROR, "params error: the simulator only serves category linear")
    inst = sim.exchange.instrument(request)
    interval = p.choice(request, "interval", INTERVALS, required=True)
    start = p.integer(request, "start")
    end = p.integer(request, "end")
    limit = p.integer(request, "limit", default=200, low=1, high=1000)
    candles = sim.market.klines(inst.symbol, interval, start, end, limit)
    return {
        "symbol": inst.symbol,
        "category": "linear",
        "list": [payloads.kline_row(candle, inst) for candle in candles],
    }


def recent_trade(sim: Simulator, request: dict) -> dict:
    p.linear_category(request)
    inst = sim.exchange.instrument(request)
    limit = p.integer(request, "limit", default=500, low=1, high=1000)
    trades = sim.market.recent_trades(inst.symbol, limit)
    return {"category": "linear", "list": [payloads.trade_row(trade, inst) for trade in trades]}


PUBLIC_ROUTES = {
    "/v5/market/time": market_time,
    "/v5/market/instruments-info": instruments_info,
    "/v5/market/tickers": tickers,
    "/v5/market/kline": kline,
    "/v5/market/recent-trade": recent_trade,
}
