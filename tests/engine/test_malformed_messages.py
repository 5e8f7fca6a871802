"""Bad input: every parser raises MalformedMessage (with a reason) and nothing else, whatever arrives."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.events import MalformedMessage, UnsupportedSymbol
from trading.feeds import (
    parse_binance_force_order,
    parse_bybit_all_liquidation,
    parse_bybit_kline,
    parse_bybit_ticker,
)

GOOD_ORDER = {
    "s": "BTCUSDT",
    "S": "SELL",
    "o": "LIMIT",
    "f": "IOC",
    "q": "0.014",
    "p": "99100.1",
    "ap": "99110.2",
    "X": "FILLED",
    "l": "0.014",
    "z": "0.014",
    "T": 1737996680279,
}
GOOD_BINANCE = {"e": "forceOrder", "E": 1737996680290, "o": GOOD_ORDER}
GOOD_BYBIT_LIQUIDATION = {
    "topic": "allLiquidation.BTCUSDT",
    "type": "snapshot",
    "ts": 1739502303204,
    "data": [{"T": 1739502302929, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "95000.1"}],
}
GOOD_TICKER = {
    "topic": "tickers.BTCUSDT",
    "type": "snapshot",
    "ts": 1760325052630,
    "cs": 1,
    "data": {"symbol": "BTCUSDT", "lastPrice": "66666.60"},
}
GOOD_KLINE = {
    "topic": "kline.1.BTCUSDT",
    "type": "snapshot",
    "ts": 1672324988882,
    "data": [
        {
            "start": 1672324800000,
            "end": 1672324859999,
            "interval": "1",
            "open": "16649.5",
            "close": "16677",
            "high": "16677",
            "low": "16608",
            "volume": "2.081",
            "turnover": "34666.4005",
            "confirm": False,
            "timestamp": 1672324988882,
        }
    ],
}


def binance_with(**changes) -> str:
    order = dict(GOOD_ORDER)
    for key, value in changes.items():
        if value is DELETE:
            order.pop(key)
        else:
            order[key] = value
    return json.dumps({**GOOD_BINANCE, "o": order})


DELETE = object()
GOOD_LINE = json.dumps(GOOD_BINANCE)


def test_the_good_samples_parse():
    assert parse_binance_force_order(GOOD_LINE).symbol == "BTCUSDT"
    assert len(parse_bybit_all_liquidation(json.dumps(GOOD_BYBIT_LIQUIDATION))) == 1
    assert parse_bybit_ticker(json.dumps(GOOD_TICKER)).symbol == "BTCUSDT"
    assert parse_bybit_kline(json.dumps(GOOD_KLINE)).symbol == "BTCUSDT"


BINANCE_CORPUS = [
    # (id, raw, reason)
    ("empty string", "", "invalid_json"),
    ("empty bytes", b"", "invalid_json"),
    ("whitespace", "   \n", "invalid_json"),
    ("truncated", GOOD_LINE[: len(GOOD_LINE) // 2], "invalid_json"),
    ("truncated by one", GOOD_LINE[:-1], "invalid_json"),
    ("binary garbage", bytes(range(256)), "not_utf8"),
    ("latin-1 bytes", '{"e":"forceOrder","x":"caf\xe9"}'.encode("latin-1"), "not_utf8"),
    ("utf-16 bytes", GOOD_LINE.encode("utf-16"), "not_utf8"),
    ("not text", 12345, "not_text"),
    ("none", None, "not_text"),
    ("json null", "null", "not_an_object"),
    ("json list", "[" + GOOD_LINE + "]", "not_an_object"),
    ("json number", "42", "not_an_object"),
    ("json string", '"forceOrder"', "not_an_object"),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, "invalid_json"),
    ("deep nesting of objects", '{"a":' * 50_000 + "1" + "}" * 50_000, "invalid_json"),
    ("huge int literal", '{"e":"forceOrder","E":' + "9" * 5000 + "}", "invalid_json"),
    ("too large", '{"e":"' + "x" * (1 << 20) + '"}', "too_large"),
    ("wrong event", json.dumps({**GOOD_BINANCE, "e": "aggTrade"}), "not_force_order"),
    ("no event type", json.dumps({"E": 1, "o": GOOD_ORDER}), "not_force_order"),
    ("subscribe answer", '{"result":null,"id":1}', "not_force_order"),
    ("o missing", json.dumps({"e": "forceOrder", "E": 1}), "missing_order"),
    ("o is a list", json.dumps({"e": "forceOrder", "E": 1, "o": [GOOD_ORDER]}), "missing_order"),
    ("o is null", json.dumps({"e": "forceOrder", "E": 1, "o": None}), "missing_order"),
    ("wrapper data is a list", json.dumps({"stream": "x", "data": [GOOD_BINANCE]}), "not_an_object"),
    ("symbol missing", binance_with(s=DELETE), "bad_symbol"),
    ("symbol null", binance_with(s=None), "bad_symbol"),
    ("symbol number", binance_with(s=123), "bad_symbol"),
    ("symbol lower case", binance_with(s="btcusdt"), "bad_symbol"),
    ("symbol with space", binance_with(s="BTC USDT"), "bad_symbol"),
    ("symbol with newline", binance_with(s="BTC\nUSDT"), "bad_symbol"),
    ("symbol empty", binance_with(s=""), "bad_symbol"),
    ("symbol with slash", binance_with(s="BTC/USDT"), "bad_symbol"),
    ("side missing", binance_with(S=DELETE), "bad_side"),
    ("side lower case", binance_with(S="sell"), "bad_side"),
    ("side bybit style", binance_with(S="Sell"), "bad_side"),
    ("side null", binance_with(S=None), "bad_side"),
    ("side list", binance_with(S=["SELL"]), "bad_side"),
    ("price missing", binance_with(p=DELETE), "bad_number:o.p"),
    ("price as json number", binance_with(p=99100.1), "bad_number:o.p"),
    ("price empty", binance_with(p=""), "bad_number:o.p"),
    ("price zero", binance_with(p="0"), "out_of_range:o.p"),
    ("price negative", binance_with(p="-1"), "bad_number:o.p"),
    ("price NaN", binance_with(p="NaN"), "bad_number:o.p"),
    ("price Infinity", binance_with(p="Infinity"), "bad_number:o.p"),
    ("price exponent", binance_with(p="1e5"), "bad_number:o.p"),
    ("price with underscore", binance_with(p="99_100"), "bad_number:o.p"),
    ("price with spaces", binance_with(p=" 99100 "), "bad_number:o.p"),
    ("price arabic digits", binance_with(p="٩٩"), "bad_number:o.p"),
    ("price huge", binance_with(p="1000000000000001"), "out_of_range:o.p"),
    ("price absurd digits", binance_with(p="9" * 400), "bad_number:o.p"),
    ("qty missing", binance_with(q=DELETE), "bad_number:o.q"),
    ("qty zero", binance_with(q="0"), "out_of_range:o.q"),
    ("qty null", binance_with(q=None), "bad_number:o.q"),
    ("qty bool", binance_with(q=True), "bad_number:o.q"),
    ("avg price NaN", binance_with(ap="NaN"), "bad_number:o.ap"),
    ("avg price huge", binance_with(ap="99999999999999999"), "out_of_range:o.ap"),
    ("avg price object", binance_with(ap={"x": 1}), "bad_number:o.ap"),
    ("filled qty negative", binance_with(z="-0.5"), "bad_number:o.z"),
    ("filled qty huge", binance_with(z="2000000000000000"), "out_of_range:o.z"),
    ("time missing", binance_with(T=DELETE), "bad_time:o.T"),
    ("time string", binance_with(T="1737996680279"), "bad_time:o.T"),
    ("time float", binance_with(T=1737996680279.5), "bad_time:o.T"),
    ("time bool", binance_with(T=True), "bad_time:o.T"),
    ("time zero", binance_with(T=0), "bad_time:o.T"),
    ("time negative", binance_with(T=-5), "bad_time:o.T"),
    ("time huge", binance_with(T=10**16), "bad_time:o.T"),
]


@pytest.mark.parametrize(
    ("raw", "reason"), [row[1:] for row in BINANCE_CORPUS], ids=[row[0] for row in BINANCE_CORPUS]
)
def test_binance_malformed_corpus(raw, reason):
    with pytest.raises(MalformedMessage) as raised:
        parse_binance_force_order(raw)
    assert raised.value.reason == reason
    assert type(raised.value) is MalformedMessage


@pytest.mark.parametrize("symbol", ["BTCUSDC", "1000PEPEUSDC", "BTCUSDT_250328", "ETHUSD_PERP", "BTCUSD"])
def test_contracts_we_dont_trade_are_unsupported_not_corrupt(symbol):
    with pytest.raises(UnsupportedSymbol) as raised:
        parse_binance_force_order(binance_with(s=symbol))
    assert raised.value.reason == "unsupported_symbol"
    assert isinstance(raised.value, MalformedMessage)


def _bybit_liquidation_with(**changes) -> str:
    item = dict(GOOD_BYBIT_LIQUIDATION["data"][0])
    for key, value in changes.items():
        if value is DELETE:
            item.pop(key)
        else:
            item[key] = value
    return json.dumps({**GOOD_BYBIT_LIQUIDATION, "data": [item]})


BYBIT_CORPUS = [
    ("truncated", json.dumps(GOOD_BYBIT_LIQUIDATION)[:40], "invalid_json"),
    ("list", "[]", "not_an_object"),
    (
        "other topic",
        json.dumps({**GOOD_BYBIT_LIQUIDATION, "topic": "publicTrade.BTCUSDT"}),
        "unexpected_topic",
    ),
    ("no topic", json.dumps({"type": "snapshot", "data": []}), "unexpected_topic"),
    ("topic number", json.dumps({**GOOD_BYBIT_LIQUIDATION, "topic": 5}), "unexpected_topic"),
    ("data object", json.dumps({**GOOD_BYBIT_LIQUIDATION, "data": {"s": "BTCUSDT"}}), "bad_data"),
    ("data null", json.dumps({**GOOD_BYBIT_LIQUIDATION, "data": None}), "bad_data"),
    ("item not object", json.dumps({**GOOD_BYBIT_LIQUIDATION, "data": ["x"]}), "bad_data"),
    ("binance side", _bybit_liquidation_with(S="SELL"), "bad_side"),
    ("side missing", _bybit_liquidation_with(S=DELETE), "bad_side"),
    ("size NaN", _bybit_liquidation_with(v="NaN"), "bad_number:v"),
    ("size zero", _bybit_liquidation_with(v="0"), "out_of_range:v"),
    ("price -Infinity", _bybit_liquidation_with(p="-Infinity"), "bad_number:p"),
    ("price huge", _bybit_liquidation_with(p="1" + "0" * 16), "out_of_range:p"),
    ("time string", _bybit_liquidation_with(T="1739502302929"), "bad_time:T"),
    ("symbol junk", _bybit_liquidation_with(s="<script>"), "bad_symbol"),
]


@pytest.mark.parametrize(
    ("raw", "reason"), [row[1:] for row in BYBIT_CORPUS], ids=[row[0] for row in BYBIT_CORPUS]
)
def test_bybit_liquidation_malformed_corpus(raw, reason):
    with pytest.raises(MalformedMessage) as raised:
        parse_bybit_all_liquidation(raw)
    assert raised.value.reason == reason


MARKET_CORPUS = [
    (parse_bybit_ticker, {**GOOD_TICKER, "topic": "kline.1.BTCUSDT"}, "unexpected_topic"),
    (parse_bybit_ticker, {**GOOD_TICKER, "type": "update"}, "bad_type"),
    (parse_bybit_ticker, {**GOOD_TICKER, "data": [GOOD_TICKER["data"]]}, "bad_data"),
    (
        parse_bybit_ticker,
        {**GOOD_TICKER, "data": {"symbol": "BTCUSDT", "lastPrice": "NaN"}},
        "bad_number:lastPrice",
    ),
    (
        parse_bybit_ticker,
        {**GOOD_TICKER, "data": {"symbol": "BTCUSDT", "lastPrice": 5}},
        "bad_number:lastPrice",
    ),
    (parse_bybit_ticker, {**GOOD_TICKER, "data": {"lastPrice": "5"}}, "bad_symbol"),
    (parse_bybit_ticker, {**GOOD_TICKER, "ts": "1760325052630"}, "bad_time:ts"),
    (parse_bybit_kline, {**GOOD_KLINE, "topic": "kline.BTCUSDT"}, "unexpected_topic"),
    (parse_bybit_kline, {**GOOD_KLINE, "topic": "tickers.BTCUSDT"}, "unexpected_topic"),
    (parse_bybit_kline, {**GOOD_KLINE, "data": []}, "bad_data"),
    (
        parse_bybit_kline,
        {**GOOD_KLINE, "data": [{**GOOD_KLINE["data"][0], "confirm": "false"}]},
        "bad_confirm",
    ),
    (
        parse_bybit_kline,
        {**GOOD_KLINE, "data": [{**GOOD_KLINE["data"][0], "volume": "-1"}]},
        "bad_number:volume",
    ),
    (
        parse_bybit_kline,
        {**GOOD_KLINE, "data": [{**GOOD_KLINE["data"][0], "close": "0"}]},
        "out_of_range:close",
    ),
    (
        parse_bybit_kline,
        {**GOOD_KLINE, "data": [{**GOOD_KLINE["data"][0], "start": "1672324800000"}]},
        "bad_time:start",
    ),
]


@pytest.mark.parametrize(("parse", "message", "reason"), MARKET_CORPUS)
def test_bybit_market_malformed_corpus(parse, message, reason):
    with pytest.raises(MalformedMessage) as raised:
        parse(json.dumps(message))
    assert raised.value.reason == reason


# -- generated junk -----------------------------------------------------------

PARSERS = [parse_binance_force_order, parse_bybit_all_liquidation, parse_bybit_ticker, parse_bybit_kline]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)
number_like = st.sampled_from(["0", "-1", "1e3", "NaN", "inf", "", " 1", "1.", ".5", "0.0", "1" * 30, "12.5"])
field_values = json_values | number_like


def _only_malformed(parse, raw) -> None:
    try:
        parse(raw)
    except MalformedMessage as error:
        assert error.reason
    # Anything else propagates and fails the test.


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | st.text(max_size=300))
def test_random_text_and_bytes_only_raise_malformed(raw):
    for parse in PARSERS:
        _only_malformed(parse, raw)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_random_json_only_raises_malformed(value):
    raw = json.dumps(value)
    for parse in PARSERS:
        _only_malformed(parse, raw)


@settings(max_examples=400, deadline=None)
@given(key=st.sampled_from(sorted(GOOD_ORDER)), value=field_values, wrap=st.booleans())
def test_binance_with_one_field_replaced_only_raises_malformed(key, value, wrap):
    message = {**GOOD_BINANCE, "o": {**GOOD_ORDER, key: value}}
    if wrap:
        message = {"stream": "!forceOrder@arr", "data": message}
    _only_malformed(parse_binance_force_order, json.dumps(message))


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["T", "s", "S", "v", "p"]), value=field_values)
def test_bybit_with_one_field_replaced_only_raises_malformed(key, value):
    item = {**GOOD_BYBIT_LIQUIDATION["data"][0], key: value}
    _only_malformed(parse_bybit_all_liquidation, json.dumps({**GOOD_BYBIT_LIQUIDATION, "data": [item]}))


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(["start", "open", "high", "low", "close", "volume", "turnover", "confirm"]),
    value=field_values,
)
def test_kline_with_one_field_replaced_only_raises_malformed(key, value):
    item = {**GOOD_KLINE["data"][0], key: value}
    _only_malformed(parse_bybit_kline, json.dumps({**GOOD_KLINE, "data": [item]}))


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(GOOD_LINE) - 1), noise=st.binary(max_size=8))
def test_truncated_and_corrupted_recorded_shapes_only_raise_malformed(cut, noise):
    for raw in (GOOD_LINE[:cut], GOOD_LINE.encode()[:cut] + noise):
        _only_malformed(parse_binance_force_order, raw)
