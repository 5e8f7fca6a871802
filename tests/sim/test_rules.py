"""The simulator's pure rules, as exact-number tables."""

from decimal import Decimal as D

import pytest

from simulator import rules
from simulator.errors import SimError
from simulator.instruments import DEFAULT_INSTRUMENTS
from simulator.market import Market, MarketClock
from simulator.ratelimit import RateLimiter, order_limit_for_tier
from simulator.replay import KlineRow, price_path
from simulator.signing import check_rest, check_ws_auth, signature


@pytest.mark.parametrize(
    "side, last, slippage, tick, expected",
    [
        ("Buy", "97000", "0.0001", "0.10", "97009.70"),
        ("Sell", "97000", "0.0001", "0.10", "96990.30"),
        ("Buy", "0.33000", "0.0001", "0.00001", "0.33004"),  # 0.330033 rounds up for a buy
        ("Sell", "0.33000", "0.0001", "0.00001", "0.32996"),  # 0.329967 rounds down for a sell
        ("Buy", "100", "0", "0.01", "100"),
    ],
)
def test_taker_price(side, last, slippage, tick, expected):
    assert rules.taker_price(side, D(last), D(slippage), D(tick)) == D(expected)


@pytest.mark.parametrize(
    "size, avg, side, qty, price, new_size, new_avg, closed, realised",
    [
        ("0", "0", "Buy", "1", "100", "1", "100", "0", "0"),
        ("1", "100", "Buy", "1", "110", "2", "105", "0", "0"),
        ("2", "105", "Sell", "1", "120", "1", "105", "1", "15"),
        ("1", "105", "Sell", "3", "90", "-2", "90", "1", "-15"),  # flips short at the fill price
        ("-2", "90", "Buy", "2", "80", "0", "0", "2", "20"),
    ],
)
def test_apply_fill(size, avg, side, qty, price, new_size, new_avg, closed, realised):
    result = rules.apply_fill(D(size), D(avg), side, D(qty), D(price))
    assert (result.size, result.avg_price, result.closed_qty, result.realised) == (
        D(new_size),
        D(new_avg),
        D(closed),
        D(realised),
    )


@pytest.mark.parametrize(
    "size, side, qty, expected",
    [
        ("0", "Buy", "1", "1"),
        ("1", "Buy", "1", "1"),
        ("1", "Sell", "0.4", "0"),
        ("1", "Sell", "3", "2"),
    ],
)
def test_opening_qty_is_what_needs_margin(size, side, qty, expected):
    assert rules.opening_qty(D(size), side, D(qty)) == D(expected)


@pytest.mark.parametrize(
    "position_side, kind, direction",
    [
        ("Buy", "TakeProfit", 1),
        ("Buy", "StopLoss", 2),
        ("Sell", "TakeProfit", 2),
        ("Sell", "StopLoss", 1),
    ],
)
def test_tp_sl_direction(position_side, kind, direction):
    assert rules.tp_sl_direction(position_side, kind) == direction


@pytest.mark.parametrize(
    "side, limit, last, fills",
    [
        ("Buy", "100", "100", True),
        ("Buy", "100", "100.1", False),
        ("Sell", "100", "99.9", False),
        ("Sell", "100", "100", True),
    ],
)
def test_resting_orders_fill_on_touch(side, limit, last, fills):
    assert rules.resting_order_fills(side, D(limit), D(last)) is fills


def test_a_bullish_candle_walks_open_low_high_close_and_a_bearish_one_open_high_low_close():
    up = KlineRow(0, D("10"), D("12"), D("9"), D("11"), D("8"))
    down = KlineRow(0, D("10"), D("12"), D("9"), D("9.5"), D("8"))
    assert [point[1] for point in price_path(up)] == [D("10"), D("9"), D("12"), D("11")]
    assert [point[1] for point in price_path(down)] == [D("10"), D("12"), D("9"), D("9.5")]
    assert [point[0] for point in price_path(up)] == [0, 20_000, 40_000, 59_000]
    assert sum(point[2] for point in price_path(up)) == D("8")


def test_the_rate_limiter_is_a_rolling_second_per_key_and_endpoint():
    limiter = RateLimiter(order_limit_for_tier("default"))
    for offset in range(10):
        assert limiter.take("k", "/v5/order/create", 1, 1000 + offset)[0] == 1
    granted, limit, remaining, reset = limiter.take("k", "/v5/order/create", 1, 1500)
    assert (granted, limit, remaining, reset) == (0, 10, 0, 2000)
    assert limiter.take("other", "/v5/order/create", 1, 1500)[0] == 1
    assert limiter.take("k", "/v5/order/cancel", 1, 1500)[0] == 1
    assert limiter.take("k", "/v5/order/create", 1, 2000)[0] == 1  # the first one left the window
    assert limiter.take("k", "/v5/order/create-batch", 20, 2000)[:3] == (10, 10, 0)


@pytest.mark.parametrize(
    "tier, limit", [("default", 10), ("vip1", 20), ("pro6", 1200), ("250", 250), ("off", None)]
)
def test_rate_tiers(tier, limit):
    assert order_limit_for_tier(tier) == limit


def test_rest_signature_checks():
    keys = {"key": "secret"}
    payload = b"category=linear&symbol=BTCUSDT"
    headers = {
        "X-BAPI-API-KEY": "key",
        "X-BAPI-TIMESTAMP": "100000",
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": signature("secret", b"100000key5000" + payload),
    }
    assert check_rest(headers, payload, keys, 100500) == "key"
    for changes, now, code in (
        ({"X-BAPI-API-KEY": "nope"}, 100500, 10003),
        ({"X-BAPI-SIGN": "0" * 64}, 100500, 10004),
        ({}, 105001, 10002),
        ({}, 99000, 10002),
    ):
        with pytest.raises(SimError) as caught:
            check_rest({**headers, **changes}, payload, keys, now)
        assert caught.value.code == code


def test_websocket_auth_checks():
    keys = {"key": "secret"}
    good = signature("secret", b"GET/realtime2000")
    assert check_ws_auth(["key", 2000, good], keys, 1000) == ("key", "")
    assert check_ws_auth(["key", 2000, good], keys, 2500)[0] is None  # expired
    assert check_ws_auth(["key", 2000, "0" * 64], keys, 1000)[0] is None


def test_klines_aggregate_into_larger_intervals():
    instruments = {"BTCUSDT": DEFAULT_INSTRUMENTS["BTCUSDT"]}
    market = Market(instruments, MarketClock())
    base = 1_700_000_400_000 - 1_700_000_400_000 % 300_000
    for minute, price in enumerate(("100", "105", "95", "101", "102", "110")):
        market.record_trade("BTCUSDT", D(price), D("1"), "Buy", base + minute * 60_000 + 1)
    five = market.klines("BTCUSDT", "5", None, None, 10)
    assert [(c.start, c.open, c.high, c.low, c.close, c.volume) for c in five] == [
        (base + 300_000, D("110"), D("110"), D("110"), D("110"), D("1")),
        (base, D("100"), D("105"), D("95"), D("102"), D("5")),
    ]
    one = market.klines("BTCUSDT", "1", base + 60_000, base + 120_000, 10)
    assert [c.close for c in one] == [D("95"), D("105")]
