"""Parsers on real recorded messages: every one parses, sides map right, numbers are exact."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.support.resources import bybit_example
from trading.events import LiquidationEvent, MalformedMessage, UnsupportedSymbol
from trading.feeds import (
    parse_binance_force_order,
    parse_bybit_all_liquidation,
    parse_bybit_kline,
    parse_bybit_ticker,
)
from trading.rules.vwap import Candle


def test_every_recorded_binance_message_parses(recorded_binance_lines):
    parsed = unsupported = 0
    for file_name, line in recorded_binance_lines:
        raw = json.loads(line)
        order = raw["o"]
        try:
            event = parse_binance_force_order(line)
        except UnsupportedSymbol:
            # USDC-margined contracts ride the same all-market stream; we only trade USDT perpetuals.
            assert order["s"].endswith("USDC"), (file_name, line)
            unsupported += 1
            continue
        parsed += 1
        assert event.symbol == order["s"]
        # Binance names the liquidation ORDER's side: a SELL order liquidates a long.
        assert event.liquidated_side == {"SELL": "long", "BUY": "short"}[order["S"]]
        assert event.price == (Decimal(order["ap"]) if Decimal(order["ap"]) > 0 else Decimal(order["p"]))
        assert event.qty == (Decimal(order["z"]) if Decimal(order["z"]) > 0 else Decimal(order["q"]))
        assert event.notional == event.price * event.qty
        assert event.event_time == order["T"]
        assert event.source == "binance"
    assert (parsed, unsupported) == (5_692, 82)  # 5,774 recorded messages, 82 on USDC contracts


def test_recorded_sides_are_mixed(five_symbol_lines):
    events = [parse_binance_force_order(line) for line in five_symbol_lines]
    sides = {event.liquidated_side for event in events}
    assert sides == {"long", "short"}
    assert len(events) == 259


def test_it_parses_a_recorded_binance_long_liquidation_exactly(five_symbol_lines):
    event = parse_binance_force_order(five_symbol_lines[0])
    # {"s":"SOLUSDT","S":"SELL","q":"36","p":"227.2217","ap":"228.3391","z":"36","T":1737996680279}
    assert event == LiquidationEvent(
        symbol="SOLUSDT",
        liquidated_side="long",
        price=Decimal("228.3391"),
        qty=Decimal("36"),
        notional=Decimal("8220.2076"),
        event_time=1737996680279,
        source="binance",
        event_id="binance:SOLUSDT:1737996680279:long:36@228.3391",
    )


def test_it_accepts_bytes_and_the_combined_stream_wrapper(five_symbol_lines):
    line = five_symbol_lines[0]
    wrapped = json.dumps({"stream": "!forceOrder@arr", "data": json.loads(line)})
    assert parse_binance_force_order(line.encode()) == parse_binance_force_order(line)
    assert parse_binance_force_order(wrapped) == parse_binance_force_order(line)


@pytest.mark.parametrize(
    ("side", "p", "ap", "q", "z", "liquidated", "price", "qty"),
    [
        ("SELL", "100.5", "101.25", "3", "2", "long", "101.25", "2"),
        ("BUY", "100.5", "101.25", "3", "2", "short", "101.25", "2"),
        # No fill yet: ap and z are "0"; the order price and quantity stand in.
        ("SELL", "100.5", "0", "3", "0", "long", "100.5", "3"),
        ("BUY", "100.5", "0.00", "3", "0.000", "short", "100.5", "3"),
    ],
)
def test_binance_fields_map_to_the_event(side, p, ap, q, z, liquidated, price, qty):
    raw = json.dumps(
        {
            "e": "forceOrder",
            "E": 1737996680300,
            "o": {
                "s": "BTCUSDT",
                "S": side,
                "o": "LIMIT",
                "f": "IOC",
                "q": q,
                "p": p,
                "ap": ap,
                "X": "FILLED",
                "l": z,
                "z": z,
                "T": 1737996680279,
            },
        }
    )
    event = parse_binance_force_order(raw)
    assert (event.liquidated_side, event.price, event.qty) == (liquidated, Decimal(price), Decimal(qty))
    assert event.notional == Decimal(price) * Decimal(qty)


def test_the_same_message_always_gets_the_same_event_id(five_symbol_lines):
    ids = [parse_binance_force_order(line).event_id for line in five_symbol_lines]
    assert ids == [parse_binance_force_order(line).event_id for line in five_symbol_lines]
    # Distinct liquidations get distinct ids (the recording has no duplicate lines in this file).
    assert len(set(ids)) == len(set(five_symbol_lines))


def test_a_non_ascii_binance_symbol_is_a_usdt_perpetual(recorded_binance_lines):
    lines = [line for _, line in recorded_binance_lines if "\\u5e01" in line]
    assert len(lines) == 5
    assert {parse_binance_force_order(line).symbol for line in lines} == {"币安人生USDT"}


# -- Bybit --------------------------------------------------------------------


def test_bybit_all_liquidation_doc_example():
    message = bybit_example("ws_allLiquidation")
    [event] = parse_bybit_all_liquidation(json.dumps(message))
    # Bybit names the POSITION side: "Sell" = a short was liquidated (opposite of Binance).
    assert event == LiquidationEvent(
        symbol="ROSEUSDT",
        liquidated_side="short",
        price=Decimal("0.04499"),
        qty=Decimal("20000"),
        notional=Decimal("899.80000"),
        event_time=1739502302929,
        source="bybit",
        event_id="bybit:ROSEUSDT:1739502302929:short:20000@0.04499",
    )


def test_bybit_batch_keeps_order_and_maps_buy_to_long():
    message = {
        "topic": "allLiquidation.BTCUSDT",
        "type": "snapshot",
        "ts": 1739502303204,
        "data": [
            {"T": 1739502302001, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "95000.1"},
            {"T": 1739502302002, "s": "BTCUSDT", "S": "Sell", "v": "0.25", "p": "95100"},
        ],
    }
    events = parse_bybit_all_liquidation(json.dumps(message))
    assert [(e.liquidated_side, e.qty, e.price, e.notional) for e in events] == [
        ("long", Decimal("0.5"), Decimal("95000.1"), Decimal("47500.05")),
        ("short", Decimal("0.25"), Decimal("95100"), Decimal("23775.00")),
    ]


@pytest.mark.parametrize(
    "control",
    [
        {"success": True, "ret_msg": "", "conn_id": "a1", "req_id": "x-1", "op": "subscribe"},
        {"success": True, "ret_msg": "pong", "conn_id": "a1", "req_id": "", "op": "ping"},
        {"success": False, "ret_msg": "error:handler not found,topic:allLiquidation.NOPE", "op": "subscribe"},
    ],
)
def test_bybit_control_messages_are_not_events(control):
    raw = json.dumps(control)
    assert parse_bybit_all_liquidation(raw) == []
    assert parse_bybit_ticker(raw) is None
    assert parse_bybit_kline(raw) is None


def test_bybit_ticker_snapshot_doc_example():
    update = parse_bybit_ticker(json.dumps(bybit_example("ws_tickers")))
    assert (update.symbol, update.last_price, update.ts) == ("BTCUSDT", Decimal("66666.60"), 1760325052630)


def test_bybit_ticker_delta_without_last_price():
    raw = json.dumps(
        {
            "topic": "tickers.BTCUSDT",
            "type": "delta",
            "cs": 1,
            "ts": 1760325052730,
            "data": {"symbol": "BTCUSDT", "bid1Price": "66666.50", "bid1Size": "1"},
        }
    )
    update = parse_bybit_ticker(raw)
    assert (update.symbol, update.last_price, update.ts) == ("BTCUSDT", None, 1760325052730)


def test_bybit_kline_doc_example():
    update = parse_bybit_kline(json.dumps(bybit_example("ws_kline")))
    assert (update.symbol, update.interval, update.ts) == ("BTCUSDT", "5", 1672324988882)
    assert update.candles == (
        Candle(
            start_ms=1672324800000,
            open=Decimal("16649.5"),
            high=Decimal("16677"),
            low=Decimal("16608"),
            close=Decimal("16677"),
            volume=Decimal("2.081"),
            turnover=Decimal("34666.4005"),
            confirmed=False,
        ),
    )


def test_a_quiet_minute_kline_has_zero_volume():
    raw = json.dumps(
        {
            "topic": "kline.1.BTCUSDT",
            "type": "snapshot",
            "ts": 1672324988882,
            "data": [
                {
                    "start": 1672324800000,
                    "end": 1672324859999,
                    "interval": "1",
                    "open": "16649.5",
                    "close": "16649.5",
                    "high": "16649.5",
                    "low": "16649.5",
                    "volume": "0",
                    "turnover": "0",
                    "confirm": True,
                    "timestamp": 1672324859999,
                }
            ],
        }
    )
    [candle] = parse_bybit_kline(raw).candles
    assert (candle.volume, candle.turnover, candle.confirmed) == (Decimal("0"), Decimal("0"), True)


def test_a_bybit_batch_with_one_bad_item_is_rejected_whole():
    message = {
        "topic": "allLiquidation.BTCUSDT",
        "type": "snapshot",
        "ts": 1739502303204,
        "data": [
            {"T": 1739502302001, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "95000.1"},
            {"T": 1739502302002, "s": "BTCUSDT", "S": "Long", "v": "0.25", "p": "95100"},
        ],
    }
    with pytest.raises(MalformedMessage) as raised:
        parse_bybit_all_liquidation(json.dumps(message))
    assert raised.value.reason == "bad_side"


def test_sim_events_carry_their_own_source_and_ids(five_symbol_lines):
    real = parse_binance_force_order(five_symbol_lines[0])
    sim = parse_binance_force_order(five_symbol_lines[0], source="sim")
    assert sim.source == "sim" and sim.event_id == "sim" + real.event_id.removeprefix("binance")
    assert (sim.symbol, sim.price, sim.qty) == (real.symbol, real.price, real.qty)
