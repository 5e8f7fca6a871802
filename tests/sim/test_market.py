"""Market data through pybit: instruments, tickers, klines and trades of the still market."""

import time
from decimal import Decimal

import pytest
from pybit.exceptions import InvalidRequestError


def test_instruments_page_with_cursor_and_carry_realistic_filters(session):
    first = session.get_instruments_info(category="linear", limit=4)["result"]
    assert len(first["list"]) == 4 and first["nextPageCursor"]
    symbols = [row["symbol"] for row in first["list"]]
    cursor = first["nextPageCursor"]
    while cursor:
        page = session.get_instruments_info(category="linear", limit=4, cursor=cursor)["result"]
        symbols += [row["symbol"] for row in page["list"]]
        cursor = page["nextPageCursor"]
    assert len(symbols) == len(set(symbols)) == 10
    btc = session.get_instruments_info(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert btc["lotSizeFilter"]["qtyStep"] == "0.001" and btc["lotSizeFilter"]["minOrderQty"] == "0.001"
    assert btc["lotSizeFilter"]["minNotionalValue"] == "5" and btc["priceFilter"]["tickSize"] == "0.10"
    assert btc["leverageFilter"]["maxLeverage"] == "100.00" and btc["status"] == "Trading"
    assert Decimal(btc["lotSizeFilter"]["maxMktOrderQty"]) < Decimal(btc["lotSizeFilter"]["maxOrderQty"])


def test_klines_are_newest_first_and_cover_the_last_day_so_a_vwap_is_defined(session):
    rows = session.get_kline(category="linear", symbol="ETHUSDT", interval="1", limit=1000)["result"]["list"]
    assert len(rows) == 1000 and all(
        len(row) == 7 and all(isinstance(cell, str) for cell in row) for row in rows
    )
    starts = [int(row[0]) for row in rows]
    assert starts == sorted(starts, reverse=True) and starts[0] - starts[1] == 60_000
    assert starts[0] >= int(time.time() * 1000) - 120_000
    volume = sum(Decimal(row[5]) for row in rows)
    turnover = sum(Decimal(row[6]) for row in rows)
    assert volume > 0 and turnover / volume == Decimal("3300")
    hours = session.get_kline(category="linear", symbol="ETHUSDT", interval="60", limit=30)["result"]["list"]
    hour_starts = [int(row[0]) for row in hours]
    # 24 h of history, plus the current hour once it has a candle (not in its first second).
    assert hour_starts[0] == starts[0] - starts[0] % 3_600_000
    assert all(a - b == 3_600_000 for a, b in zip(hour_starts, hour_starts[1:], strict=False))
    assert len(hours) in (24, 25)


def test_klines_and_trades_follow_a_new_price(sim, session):
    sim.set_price("BTCUSDT", "98000.00")
    sim.set_price("BTCUSDT", "96500.00")
    newest = session.get_kline(category="linear", symbol="BTCUSDT", interval="1", limit=1)["result"]["list"][
        0
    ]
    assert (newest[2], newest[3], newest[4]) == ("98000.00", "96500.00", "96500.00")
    trades = session.get_public_trade_history(category="linear", symbol="BTCUSDT", limit=2)["result"]["list"]
    assert [(t["price"], t["side"]) for t in trades] == [("96500.00", "Sell"), ("98000.00", "Buy")]
    ticker = session.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert (ticker["lastPrice"], ticker["highPrice24h"], ticker["lowPrice24h"]) == (
        "96500.00",
        "98000.00",
        "96500.00",
    )
    assert ticker["prevPrice24h"] == "97000.00" and Decimal(ticker["price24hPcnt"]) < 0
    assert (ticker["bid1Price"], ticker["ask1Price"]) == (
        "96490.30",
        "96509.70",
    )  # 1 bp, rounded to the tick away


def test_all_tickers_and_bad_queries(session):
    rows = session.get_tickers(category="linear")["result"]["list"]
    assert len(rows) == 10 and all(Decimal(row["volume24h"]) > 0 for row in rows)
    with pytest.raises(InvalidRequestError) as caught:
        session.get_kline(category="linear", symbol="BTCUSDT", interval="2")
    assert caught.value.status_code == 10001
    with pytest.raises(InvalidRequestError) as caught:
        session.get_tickers(category="spot")
    assert caught.value.status_code == 10001
