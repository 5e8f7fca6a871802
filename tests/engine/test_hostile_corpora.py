"""Hostile input from the venues, kept as corpora under tests/resources/hostile/: every entry is
refused with our own error (``MalformedMessage`` from the feeds, a ``GatewayError`` from the
gateway), never a bare ``KeyError``/``ValueError``/``decimal.InvalidOperation``, or parsed to a
sane value; no hostile answer ever yields an order acknowledgement; a bad private-stream batch
leaves the engine's view of the account as it was; and a liquidation delivered twice or out of
order through the running engine gives one order.

tests/engine/test_malformed_messages.py holds the feed parsers' reason codes and generated junk;
this file runs the stored corpora, the gateway's parsers and the engine.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.engine import entry_orders, move_price
from tests.support.resources import bybit_example, hostile_corpus
from tests.support.waiting import wait_until
from trading.bybit import BybitGateway
from trading.bybit import parsing as bybit_parsing
from trading.engine import LiquidationEngine
from trading.errors import ExchangeUnreachable, GatewayError, MalformedAnswer
from trading.events import LiquidationEvent, MalformedMessage, UnsupportedSymbol
from trading.feeds import parse_binance_force_order, parse_bybit_all_liquidation
from trading.instruments import Instrument, InstrumentCache, parse_instrument
from trading.rules import Side

FRAMES = hostile_corpus("liquidation_frames", "frames")
ROWS = hostile_corpus("bybit_rows", "rows")
ANSWERS = hostile_corpus("rest_answers", "answers")
PARSERS = {
    **{name: getattr(bybit_parsing, name) for name in dir(bybit_parsing) if name.startswith("parse_")},
    "parse_instrument": parse_instrument,
}
D = Decimal


def _sane_number(value) -> bool:
    return value is None or (isinstance(value, Decimal) and value.is_finite() and abs(value) <= D("1e18"))


def _assert_sane(parsed) -> None:
    """Every number finite and bounded, every time aware UTC, sizes and prices not negative."""
    for name in getattr(parsed, "__dataclass_fields__", {}):
        value = getattr(parsed, name)
        if name == "im_pct" and value == D("Infinity"):
            continue  # im_pct_of's answer for margin in use without equity: the guard blocks
        if isinstance(value, Decimal) or value is None:
            assert _sane_number(value), (name, value)
        if isinstance(value, Decimal) and any(word in name for word in ("qty", "size", "price")):
            assert value >= 0, (name, value)
        if isinstance(value, datetime):
            assert value.tzinfo is UTC and 2000 <= value.year <= 9999, (name, value)


# -- liquidation frames ---------------------------------------------------------------------


@pytest.mark.parametrize("entry", FRAMES, ids=[f"{f['feed']}: {f['id']}" for f in FRAMES])
def test_every_hostile_liquidation_frame_is_refused_or_parsed_sanely(entry):
    parse = {"binance": parse_binance_force_order, "bybit": parse_bybit_all_liquidation}[entry["feed"]]
    try:
        parsed = parse(entry["raw"])
    except UnsupportedSymbol:
        assert entry["expect"] == "unsupported"
        return
    except MalformedMessage as error:
        assert entry["expect"] == "malformed" and error.reason
        return
    assert entry["expect"] == "parsed", f"expected {entry['expect']}, got {parsed!r}"
    for event in parsed if isinstance(parsed, list) else [parsed]:
        assert isinstance(event, LiquidationEvent)
        assert 0 < event.price <= D("1e15") and 0 < event.qty <= D("1e15")
        assert event.notional == event.price * event.qty and 0 < event.event_time < 10**15


# -- gateway rows (REST answers and the private stream) ---------------------------------------


def _documented_row(name: str):
    example = bybit_example(name)
    rows = example["data"] if "data" in example else example["result"].get("list", example["result"])
    return copy.deepcopy(rows[0] if isinstance(rows, list) else rows)


def _row_of(entry):
    if "row" in entry:
        return entry["row"]
    row = _documented_row(entry["from"])
    for dotted, value in entry.get("set", {}).items():
        *path, name = dotted.split(".")
        target = row
        for part in path:
            target = target[part]
        target[name] = value
    for name in entry.get("delete", []):
        row.pop(name, None)
    return row


@pytest.mark.parametrize("entry", ROWS, ids=[f"{r['parser']}: {r['id']}" for r in ROWS])
def test_every_hostile_bybit_row_is_refused_or_parsed_sanely(entry):
    parse = PARSERS[entry["parser"]]
    try:
        parsed = parse(_row_of(entry))
    except MalformedAnswer as error:
        assert entry["expect"] == "malformed", f"refused: {error}"
        assert isinstance(error, GatewayError)
        return
    assert entry["expect"] == "parsed", f"expected a refusal, got {parsed!r}"
    _assert_sane(parsed)


def test_the_row_corpus_covers_every_parser_of_the_gateway():
    assert {entry["parser"] for entry in ROWS} == set(PARSERS)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"result": []},
        {"result": {"timeNano": "NaN"}},
        {"result": {"timeSecond": "-5"}},
        {"time": "x"},
        [],
    ],
    ids=repr,
)
def test_a_server_time_answer_without_a_time_is_malformed(body):
    with pytest.raises(MalformedAnswer):
        bybit_parsing.venue_time_ms(body)


def test_a_private_batch_with_one_bad_row_changes_nothing_and_is_reported_as_malformed():
    engine = LiquidationEngine(gateway=None, loop=asyncio.new_event_loop(), order_threads=1)
    good = {**_documented_row("ws_position"), "size": "0.01", "side": "Buy"}  # the example is flat
    engine.apply_private("position", [good])
    before = dict(engine.account.positions)
    assert before == {good["symbol"]: D(good["size"])}
    flat_then_nan = [{**good, "size": "0"}, {**good, "symbol": "ETHUSDT", "size": "NaN"}]
    with pytest.raises(MalformedMessage) as raised:
        engine.apply_private("position", flat_then_nan)
    assert raised.value.reason == "bad_position_row"
    assert engine.account.positions == before, "the flat row before the bad one was not applied"
    wallet = _documented_row("ws_wallet")
    engine.apply_private("wallet", [wallet])
    im_pct = engine.account.im_pct
    with pytest.raises(MalformedMessage):
        engine.apply_private("wallet", [{**wallet, "totalEquity": "NaN"}])
    assert engine.account.im_pct == im_pct and im_pct.is_finite()
    engine.order_executor.shutdown()


# -- whole answers, through pybit and the gateway ---------------------------------------------


class _VenueStandIn:
    """An HTTP server on 127.0.0.1 answering every request with status 200 and one body."""

    def __init__(self) -> None:
        self.body = ""
        self.requests: list[tuple[str, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stand_in.requests.append((self.command, self.path.split("?")[0]))
                payload = stand_in.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def venue():
    stand_in = _VenueStandIn()
    yield stand_in
    stand_in.close()


def _gateway(venue) -> BybitGateway:
    gateway = BybitGateway(
        mode="sim",
        api_key="hostile-key",
        api_secret="hostile-secret",
        base_url=venue.url,
        timeout=2.0,
        position_mode="one_way",
        max_attempts=1,
    )
    btc = parse_instrument(_documented_row("market_instruments_info_linear"))
    gateway.instruments = InstrumentCache(load=lambda: [btc])
    return gateway


READS = {
    "positions": lambda g: g.positions(),
    "wallet": lambda g: g.wallet(),
    "open_orders": lambda g: g.open_orders(),
    "tickers": lambda g: g.tickers(),
    "klines": lambda g: g.klines(symbol="BTCUSDT"),
    "recent_trades": lambda g: g.recent_trades(symbol="BTCUSDT"),
    "instruments": lambda g: g.fetch_instruments(),
    "closed_pnl": lambda g: g.closed_pnl(),
    "executions": lambda g: g.executions(),
    "api_key_info": lambda g: g.api_key_info(),
    "server_time": lambda g: g.server_time(),
    "cancel_all": lambda g: g.cancel_all_orders(),
}


@pytest.mark.parametrize("answer", ANSWERS, ids=[a["id"] for a in ANSWERS])
def test_every_hostile_answer_is_a_gateway_error_and_never_an_order(venue, answer):
    venue.body = answer["body"]
    gateway = _gateway(venue)
    expected = {"unreachable": ExchangeUnreachable, "malformed": MalformedAnswer}[answer["expect"]]
    with pytest.raises(expected):
        gateway.positions()
    for name, read in READS.items():
        try:
            value = read(gateway)
        except GatewayError:
            continue
        # A read that got through read only fields it could check (the row's others are
        # missing, so 0 or None), or the envelope's own time.
        for item in value if isinstance(value, list) else [value]:
            assert not isinstance(item, str), (name, item)
            _assert_sane(item)
    venue.requests.clear()
    with pytest.raises(GatewayError):
        gateway.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=D("0.010"),
            order_link_id="wl-hostile-answer-1",
            reference_price=D("95000"),
        )
    creates = [path for method, path in venue.requests if path == "/v5/order/create"]
    assert 1 <= len(creates) <= 2, "an unreadable answer is looked up, and resent at most once under one id"


def test_an_instrument_row_with_a_step_of_zero_is_left_out_and_the_others_load(venue):
    good = _documented_row("market_instruments_info_linear")
    bad = copy.deepcopy(good)
    bad["symbol"], bad["lotSizeFilter"]["qtyStep"] = "ZEROSTEPUSDT", "0"
    venue.body = json.dumps({"retCode": 0, "retMsg": "OK", "result": {"list": [bad, good]}})
    assert [i.symbol for i in _gateway(venue).fetch_instruments()] == ["BTCUSDT"]


def test_the_instrument_table_refuses_a_step_of_zero_before_anything_divides_by_it():
    row = _documented_row("market_instruments_info_linear")
    row["lotSizeFilter"]["qtyStep"] = "0"
    cache = InstrumentCache(load=lambda: [parse_instrument(row)])
    with pytest.raises(MalformedAnswer):
        cache.refresh()
    assert len(cache) == 0 and isinstance(
        parse_instrument(_documented_row("market_instruments_info_linear")), Instrument
    )


# -- the running engine: duplicated and out-of-order liquidations ------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_liquidation_delivered_twice_and_out_of_order_gives_one_order(sim, btc_coin, engine_thread):
    from trading.models import Decision

    btc_coin.max_event_age_ms = 60_000  # the replays below stay fresh enough to be decided
    btc_coin.save()
    engine = engine_thread.engine
    wait_until(lambda: engine.coins["BTCUSDT"].max_event_age_ms == 60_000, what="the coin edit", timeout_s=10)
    move_price(sim, engine, "BTCUSDT", "95000.00")
    now_ms = time.time_ns() // 1_000_000

    def frame(t_ms: int, qty: str = "0.5") -> LiquidationEvent:
        order = {"s": "BTCUSDT", "S": "SELL", "q": qty, "p": "95000", "ap": "95000", "z": qty, "T": t_ms}
        return parse_binance_force_order(json.dumps({"e": "forceOrder", "E": t_ms, "o": order}))

    newest, duplicate, older = frame(now_ms), frame(now_ms), frame(now_ms - 5_000, "0.7")
    assert newest.event_id == duplicate.event_id

    def deliver(*events):
        done = threading.Event()

        def on_loop():
            for event in events:
                engine.on_event(event)
            done.set()

        engine_thread.loop.call_soon_threadsafe(on_loop)
        assert done.wait(5)

    # The same frame twice in one burst, then an older one: the first enters, the rest wait on it.
    deliver(newest, duplicate, older)
    [order] = wait_until(lambda: entry_orders(sim), what="the entry order")
    wait_until(lambda: "BTCUSDT" in engine.account.positions, what="the position on the private stream")
    # Replayed again after the position showed (a reconnect's replay): still one order.
    deliver(duplicate, older)
    wait_until(
        lambda: Decision.objects.filter(reason_code="already_in_position").count() >= 4,
        what="the replays journaled as skips",
    )
    assert len(entry_orders(sim)) == 1 and entry_orders(sim)[0]["orderLinkId"] == order["orderLinkId"]
    assert Decision.objects.filter(outcome="taken").count() == 1
