"""aiohttp edge of the simulator: Bybit V5 REST, the websockets, and the /sim/ control surface.

Handlers are thin: check the signature, the rate limit and injected faults, call the
`Exchange`/`Simulator`, wrap the answer in Bybit's envelope. All on one port.
"""

import asyncio
import json
import logging
import signal
import time
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from . import params as p
from . import payloads, signing
from .errors import PARAMS_ERROR, TOO_MANY_VISITS, SimError, error
from .faults import parse_fault
from .market import INTERVALS, wall_ms
from .numbers import NumberError, parse_decimal
from .simulator import SimOptions, Simulator, parse_speed
from .streams import BINANCE, PRIVATE, PUBLIC, Connection, dumps

logger = logging.getLogger("simulator")

SIM_KEY = web.AppKey("simulator", Simulator)
ORDER_CREATE = "/v5/order/create"
ORDER_BATCH = "/v5/order/create-batch"
MAX_BATCH = 20  # linear batch orders per request (raised from 10 in Feb 2025)
DEFAULT_MESSAGES = {
    10000: "Server Timeout",
    10016: "Server error.",
    10006: "Too many visits!",
    10001: "Request parameter error",
    10002: "The request time exceeds the time window range.",
}


def envelope(result, ret_code: int = 0, ret_msg: str = "OK", ext=None) -> str:
    return dumps(
        {
            "retCode": ret_code,
            "retMsg": ret_msg,
            "result": result if result is not None else {},
            "retExtInfo": ext if ext is not None else {},
            "time": wall_ms(),
        }
    )


def _json_response(text: str, headers=None, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


# -- public REST ---------------------------------------------------------------------------


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


# -- private REST --------------------------------------------------------------------------


def _order_ack(order) -> dict:
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def order_create(sim: Simulator, request: dict, received_ns: int) -> dict:
    return _order_ack(sim.exchange.place_order(request, received_ns))


def order_create_batch(sim: Simulator, request: dict, received_ns: int, granted: int):
    """Per-order results: retExtInfo.list[i] pairs with result.list[i]; the envelope says 0."""
    p.linear_category(request)
    items = request.get("request")
    if not isinstance(items, list) or not items:
        raise SimError(PARAMS_ERROR, "params error: request must be a non-empty list of orders")
    if len(items) > MAX_BATCH:
        raise SimError(PARAMS_ERROR, f"params error: at most {MAX_BATCH} orders per batch")
    results, codes = [], []
    for index, item in enumerate(items):
        created_at = str(wall_ms())
        if not isinstance(item, dict):
            item = {}
        symbol = item.get("symbol", "") if isinstance(item.get("symbol"), str) else ""
        try:
            if index >= granted:
                # The batch budget counts orders: what exceeds this second's budget fails alone.
                raise error(TOO_MANY_VISITS)
            order = sim.exchange.place_order(dict(item, category="linear"), received_ns)
        except SimError as refusal:
            if index >= granted:
                sim.exchange.record_refused(item, refusal.code, received_ns)
            results.append(
                {
                    "category": "linear",
                    "symbol": symbol,
                    "orderId": "",
                    "orderLinkId": item.get("orderLinkId", "") or "",
                    "createAt": "",
                }
            )
            codes.append({"code": refusal.code, "msg": refusal.message})
            continue
        results.append(
            {
                "category": "linear",
                "symbol": order.symbol,
                "orderId": order.order_id,
                "orderLinkId": order.order_link_id,
                "createAt": created_at,
            }
        )
        codes.append({"code": 0, "msg": "OK"})
    return {"list": results}, {"list": codes}


def order_amend(sim: Simulator, request: dict, received_ns: int) -> dict:
    return _order_ack(sim.exchange.amend_order(request))


def order_cancel(sim: Simulator, request: dict, received_ns: int) -> dict:
    return _order_ack(sim.exchange.cancel_order(request))


def order_cancel_all(sim: Simulator, request: dict, received_ns: int) -> dict:
    cancelled = sim.exchange.cancel_all(request)
    return {"list": [_order_ack(order) for order in cancelled], "success": "1"}


def _order_list(sim: Simulator, request: dict, orders) -> dict:
    limit, offset = p.page(request, default=20, maximum=50)
    chunk, cursor = p.paginate(orders, limit, offset)
    instruments = sim.exchange.instruments
    return {
        "list": [payloads.order_row(order, instruments.get(order.symbol)) for order in chunk],
        "nextPageCursor": cursor,
        "category": "linear",
    }


def order_realtime(sim: Simulator, request: dict, received_ns: int) -> dict:
    return _order_list(sim, request, sim.exchange.open_orders(request))


def order_history(sim: Simulator, request: dict, received_ns: int) -> dict:
    return _order_list(sim, request, sim.exchange.order_history(request))


def disconnected_cancel_all(sim: Simulator, request: dict, received_ns: int) -> dict:
    sim.exchange.set_dcp(request)
    return {}


def query_dcp_info(sim: Simulator, request: dict, received_ns: int) -> dict:
    windows = sim.exchange.account.dcp_windows
    return {
        "dcpInfos": [
            {"product": product, "dcpStatus": "ON", "timeWindow": str(windows.get(product, 10))}
            for product in ("DERIVATIVES", "SPOT", "OPTIONS")
            if product == "DERIVATIVES" or product in windows
        ]
    }


def position_list(sim: Simulator, request: dict, received_ns: int) -> dict:
    positions = sim.exchange.positions(request)
    limit, offset = p.page(request, default=20, maximum=200)
    chunk, cursor = p.paginate(positions, limit, offset)
    return {
        "list": [payloads.position_row(sim.exchange, position) for position in chunk],
        "nextPageCursor": cursor,
        "category": "linear",
    }


def set_leverage(sim: Simulator, request: dict, received_ns: int) -> dict:
    sim.exchange.set_leverage(request)
    return {}


def trading_stop(sim: Simulator, request: dict, received_ns: int) -> dict:
    sim.exchange.trading_stop(request)
    return {}


def switch_mode(sim: Simulator, request: dict, received_ns: int) -> dict:
    sim.exchange.switch_mode(request)
    return {}


def wallet_balance(sim: Simulator, request: dict, received_ns: int) -> dict:
    account_type = p.text(request, "accountType", required=True)
    if account_type != "UNIFIED":
        raise SimError(PARAMS_ERROR, "accountType only support UNIFIED")
    return {"list": [payloads.wallet_row(sim.exchange.totals())]}


def execution_list(sim: Simulator, request: dict, received_ns: int) -> dict:
    rows = sim.exchange.executions(request)
    limit, offset = p.page(request, default=50, maximum=100)
    chunk, cursor = p.paginate(rows, limit, offset)
    instruments = sim.exchange.instruments
    return {
        "nextPageCursor": cursor,
        "category": "linear",
        "list": [payloads.execution_row(e, instruments[e.symbol]) for e in chunk],
    }


def closed_pnl(sim: Simulator, request: dict, received_ns: int) -> dict:
    rows = sim.exchange.closed_pnl(request)
    limit, offset = p.page(request, default=50, maximum=100)
    chunk, cursor = p.paginate(rows, limit, offset)
    instruments = sim.exchange.instruments
    return {
        "nextPageCursor": cursor,
        "category": "linear",
        "list": [payloads.closed_pnl_row(c, instruments[c.symbol]) for c in chunk],
    }


PRIVATE_ROUTES = {
    ("POST", ORDER_CREATE): order_create,
    ("POST", ORDER_BATCH): order_create_batch,
    ("POST", "/v5/order/amend"): order_amend,
    ("POST", "/v5/order/cancel"): order_cancel,
    ("POST", "/v5/order/cancel-all"): order_cancel_all,
    ("POST", "/v5/order/disconnected-cancel-all"): disconnected_cancel_all,
    ("GET", "/v5/order/realtime"): order_realtime,
    ("GET", "/v5/order/history"): order_history,
    ("GET", "/v5/position/list"): position_list,
    ("POST", "/v5/position/set-leverage"): set_leverage,
    ("POST", "/v5/position/trading-stop"): trading_stop,
    ("POST", "/v5/position/switch-mode"): switch_mode,
    ("GET", "/v5/account/wallet-balance"): wallet_balance,
    ("GET", "/v5/account/query-dcp-info"): query_dcp_info,
    ("GET", "/v5/execution/list"): execution_list,
    ("GET", "/v5/position/closed-pnl"): closed_pnl,
}


# -- handlers ------------------------------------------------------------------------------


def _public_handler(function):
    async def handle(request: web.Request) -> web.Response:
        sim = request.app[SIM_KEY]
        path = request.path
        fault = sim.faults.take(path)
        if fault is not None:
            response = await _apply_fault_before(fault, None)
            if response is not None:
                return response
        query = dict(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True))
        try:
            text = envelope(function(sim, query))
        except SimError as refusal:
            text = envelope({}, refusal.code, refusal.message)
        if fault is not None and fault.mode == "accept_then_timeout":
            await sim.hold(fault.latency_ms)
        return _json_response(text)

    return handle


async def _apply_fault_before(fault, headers) -> web.Response | None:
    """Error and latency faults act before the request is handled; None = handle it."""
    if fault.mode == "latency":
        await asyncio.sleep(fault.latency_ms / 1000)
        return None
    if fault.mode != "error":
        return None
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    if fault.http_status is not None and fault.http_status != 200:
        return web.Response(
            status=fault.http_status,
            text=f"<html><body>{fault.http_status} injected by the simulator</body></html>",
            content_type="text/html",
            headers=headers,
        )
    code = fault.ret_code or 10016
    message = fault.message or DEFAULT_MESSAGES.get(code, "injected error")
    return _json_response(envelope({}, code, message), headers)


def _private_handler(path: str, method: str, function):
    async def handle(request: web.Request) -> web.Response:
        received_ns = time.time_ns()
        sim = request.app[SIM_KEY]
        if method == "POST":
            payload = await request.read()
        else:
            payload = request.raw_path.partition("?")[2].encode()
        now = wall_ms()
        body = _parse_params(method, payload)
        try:
            api_key = signing.check_rest(request.headers, payload, sim.keys, now)
        except SimError as refusal:
            _record_refused(sim, path, body, refusal.code, received_ns)
            limit, remaining, reset_ms = sim.limiter.peek(
                request.headers.get("X-BAPI-API-KEY", ""), path, now
            )
            return _json_response(
                envelope({}, refusal.code, refusal.message), _limit_headers(limit, remaining, reset_ms)
            )
        units = 1
        if path == ORDER_BATCH and isinstance(body, dict) and isinstance(body.get("request"), list):
            units = max(1, min(len(body["request"]), MAX_BATCH))
        granted, limit, remaining, reset_ms = sim.limiter.take(api_key, path, units, now)
        headers = _limit_headers(limit, remaining, reset_ms)
        if granted == 0 and path != ORDER_BATCH:
            _record_refused(sim, path, body, TOO_MANY_VISITS, received_ns)
            return _json_response(envelope({}, TOO_MANY_VISITS, "Too many visits!"), headers)
        fault = sim.faults.take(path)
        hold_ms = 0
        if fault is not None:
            if fault.mode == "error":
                _record_refused(sim, path, body, fault.ret_code or fault.http_status or 10016, received_ns)
            response = await _apply_fault_before(fault, headers)
            if response is not None:
                return response
            if fault.mode == "accept_then_timeout":
                hold_ms = fault.latency_ms
        try:
            if body is None:
                raise SimError(PARAMS_ERROR, "params error: the body is not a JSON object")
            if path == ORDER_BATCH:
                result, ext = function(sim, body, received_ns, granted)
            else:
                result, ext = function(sim, body, received_ns), None
            text = envelope(result, ext=ext)
        except SimError as refusal:
            text = envelope({}, refusal.code, refusal.message)
        sim.flush()
        if hold_ms:
            # The order stands; the answer comes after the client has given up waiting.
            await sim.hold(hold_ms)
        return _json_response(text, headers)

    return handle


def _limit_headers(limit: int, remaining: int, reset_ms: int) -> dict:
    return {
        "X-Bapi-Limit": str(limit),
        "X-Bapi-Limit-Status": str(remaining),
        "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
    }


def _parse_params(method: str, payload: bytes):
    if method == "GET":
        return dict(parse_qsl(payload.decode(errors="replace"), keep_blank_values=True))
    if not payload.strip():
        return {}
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _record_refused(sim: Simulator, path: str, body, code: int, received_ns: int) -> None:
    if not isinstance(body, dict):
        return
    if path == ORDER_CREATE:
        sim.exchange.record_refused(body, code, received_ns)
    elif path == ORDER_BATCH and isinstance(body.get("request"), list):
        for item in body["request"]:
            if isinstance(item, dict):
                sim.exchange.record_refused(item, code, received_ns)


# -- websockets ----------------------------------------------------------------------------


async def public_ws(request: web.Request) -> web.WebSocketResponse:
    sim = request.app[SIM_KEY]
    ws = web.WebSocketResponse(autoping=True, heartbeat=None)
    await ws.prepare(request)
    connection = Connection(ws, request.transport, PUBLIC, request.path)
    sim.hub.add(connection)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            _public_op(sim, connection, message.data)
    finally:
        sim.hub.remove(connection)
    return ws


# pybit records a subscription (and the topic's callback) only after sending the request,
# so an answer that arrives before that makes its dispatcher fail with a KeyError and
# drop the connection. A real venue is a network round trip away; the simulator waits
# about one before acknowledging a subscription and starting its data.
SUBSCRIBE_ROUND_TRIP_S = 0.05


def _after_round_trip(connection: Connection, action) -> None:
    def run():
        if not connection.ws.closed:
            action()

    asyncio.get_running_loop().call_later(SUBSCRIBE_ROUND_TRIP_S, run)


def _parse_op(text: str):
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _op_answer(connection: Connection, *, op: str, req_id, success: bool, ret_msg: str) -> None:
    """Bybit's answer to a websocket op (subscribe, unsubscribe, auth, ping)."""
    connection.send_json(
        {"success": success, "ret_msg": ret_msg, "conn_id": connection.conn_id, "req_id": req_id, "op": op}
    )


def _public_op(sim: Simulator, connection: Connection, text: str) -> None:
    message = _parse_op(text)
    if message is None:
        connection.send_json(
            {"success": False, "ret_msg": "error:unknown message", "conn_id": connection.conn_id, "op": ""}
        )
        return
    op = message.get("op")
    req_id = message.get("req_id", "")
    if op == "ping":
        _op_answer(connection, op="ping", req_id=req_id, success=True, ret_msg="pong")
        return
    if op not in ("subscribe", "unsubscribe"):
        _op_answer(
            connection, op=op or "", req_id=req_id, success=False, ret_msg=f"error:unsupported op {op}"
        )
        return
    args = message.get("args") if isinstance(message.get("args"), list) else []
    bad = [topic for topic in args if not _public_topic_ok(sim, topic)]
    if bad:
        _op_answer(
            connection, op=op, req_id=req_id, success=False, ret_msg=f"error:handler not found,topic:{bad[0]}"
        )
        return

    def apply():
        for topic in args:
            if op == "subscribe":
                sim.hub.subscribe(connection, topic)
            else:
                sim.hub.unsubscribe(connection, topic)
        _op_answer(connection, op=op, req_id=req_id, success=True, ret_msg="")
        if op == "subscribe":
            now = sim.clock.now_ms()
            for topic in args:
                _send_snapshot(sim, connection, topic, now)

    _after_round_trip(connection, apply)


def _public_topic_ok(sim: Simulator, topic) -> bool:
    if not isinstance(topic, str):
        return False
    parts = topic.split(".")
    symbols = sim.market.instruments
    if len(parts) == 2 and parts[0] in ("tickers", "publicTrade"):
        return parts[1] in symbols
    if len(parts) == 2 and parts[0] == "allLiquidation":
        return bool(parts[1])  # liquidations of any symbol can be streamed (replay data)
    if len(parts) == 3 and parts[0] == "kline":
        return parts[1] in INTERVALS and parts[2] in symbols
    return False


def _send_snapshot(sim: Simulator, connection: Connection, topic: str, now: int) -> None:
    """Tickers and klines start with the current state, as Bybit's do."""
    parts = topic.split(".")
    if parts[0] == "tickers":
        connection.send_json(sim.ticker_snapshot(parts[1], now))
    elif parts[0] == "kline":
        message = sim.kline_message(topic, parts[2], parts[1], now)
        if message is not None:
            connection.send_json(message)


async def private_ws(request: web.Request) -> web.WebSocketResponse:
    sim = request.app[SIM_KEY]
    ws = web.WebSocketResponse(autoping=True, heartbeat=None)
    await ws.prepare(request)
    connection = Connection(ws, request.transport, PRIVATE, request.path)
    sim.hub.add(connection)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            _private_op(sim, connection, message.data)
    finally:
        sim.hub.remove(connection)
        if connection.dcp:
            connection.dcp = False
            sim.dcp_connection_gone()
    return ws


PRIVATE_STREAM_TOPICS = {
    "position",
    "order",
    "execution",
    "wallet",
    "position.linear",
    "order.linear",
    "execution.linear",
    "wallet.linear",
    "dcp.future",
    "dcp",
}


def _private_op(sim: Simulator, connection: Connection, text: str) -> None:
    message = _parse_op(text)
    if message is None:
        return
    op = message.get("op")
    req_id = message.get("req_id", "")
    if op == "ping":
        connection.send_json(
            {"req_id": req_id, "op": "pong", "args": [str(wall_ms())], "conn_id": connection.conn_id}
        )
        return
    if op == "auth":
        api_key, problem = signing.check_ws_auth(message.get("args"), sim.keys, wall_ms())
        if api_key is not None:
            connection.api_key = api_key
        _op_answer(connection, op="auth", req_id=req_id, success=api_key is not None, ret_msg=problem)
        return
    if op not in ("subscribe", "unsubscribe"):
        _op_answer(
            connection, op=op or "", req_id=req_id, success=False, ret_msg=f"error:unsupported op {op}"
        )
        return
    if connection.api_key is None:
        _op_answer(connection, op=op, req_id=req_id, success=False, ret_msg="Request not authorized")
        return
    args = message.get("args") if isinstance(message.get("args"), list) else []
    bad = [topic for topic in args if topic not in PRIVATE_STREAM_TOPICS]
    if bad:
        _op_answer(
            connection, op=op, req_id=req_id, success=False, ret_msg=f"error:handler not found,topic:{bad[0]}"
        )
        return

    def apply():
        for topic in args:
            if op == "subscribe":
                sim.hub.subscribe(connection, topic)
                if topic.startswith("dcp"):
                    connection.dcp = True
                    sim.dcp_armed = True
                    sim.dcp_gone_ms = None
            else:
                sim.hub.unsubscribe(connection, topic)
                if topic.startswith("dcp") and not any(t.startswith("dcp") for t in connection.topics):
                    connection.dcp = False
                    sim.dcp_connection_gone()
        _op_answer(connection, op=op, req_id=req_id, success=True, ret_msg="")

    _after_round_trip(connection, apply)


async def binance_ws(request: web.Request) -> web.WebSocketResponse:
    """Binance USD-M market streams: forceOrder only (`!forceOrder@arr`, `<symbol>@forceOrder`)."""
    sim = request.app[SIM_KEY]
    combined = request.match_info.get("kind") == "stream"
    if combined:
        names = [name for name in request.query.get("streams", "").split("/") if name]
    else:
        names = [name for name in request.match_info.get("streams", "").split("/") if name]
    if not names or not all(name == "!forceOrder@arr" or name.endswith("@forceOrder") for name in names):
        raise web.HTTPBadRequest(
            text="the simulator serves !forceOrder@arr and <symbol>@forceOrder streams only"
        )
    ws = web.WebSocketResponse(autoping=True, heartbeat=180.0)
    await ws.prepare(request)
    connection = Connection(ws, request.transport, BINANCE, request.path)
    connection.combined = combined
    if "!forceOrder@arr" not in names:
        connection.symbols = {name.split("@")[0].upper() for name in names}
    sim.hub.add(connection)
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                _binance_op(connection, message.data)
    finally:
        sim.hub.remove(connection)
    return ws


def _binance_op(connection: Connection, text: str) -> None:
    message = _parse_op(text)
    if message is None:
        return
    # Subscription management requests get Binance's plain acknowledgement.
    if message.get("method") in ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS"):
        connection.send_json({"result": None, "id": message.get("id")})


# -- control surface -----------------------------------------------------------------------


@web.middleware
async def localhost_only(request: web.Request, handler):
    if request.path.startswith("/sim/") and request.remote not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        return web.json_response({"error": "the control surface answers localhost only"}, status=403)
    return await handler(request)


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text=dumps({"error": "body must be JSON"}), content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=dumps({"error": "body must be a JSON object"}), content_type="application/json"
        )
    return body


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def _decimal_field(body: dict, name: str) -> Decimal:
    value = body.get(name)
    try:
        return parse_decimal(value if not isinstance(value, float) else repr(value), name)
    except NumberError as problem:
        raise ValueError(str(problem)) from None


async def control_price(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await _json_body(request)
    symbol = body.get("symbol")
    if symbol not in sim.market.instruments:
        return _bad(f"unknown symbol {symbol!r}")
    try:
        price = _decimal_field(body, "price")
    except ValueError as problem:
        return _bad(str(problem))
    tick = sim.market.instruments[symbol].tick_size
    if price <= 0 or price % tick:
        return _bad(f"price must be a positive multiple of the tick size {tick}")
    sim.set_price(symbol, price)
    return web.json_response({"symbol": symbol, "price": str(sim.market.last(symbol))})


async def control_liquidation(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await _json_body(request)
    symbol = body.get("symbol")
    side = body.get("side")
    if not isinstance(symbol, str) or not symbol:
        return _bad("symbol is required")
    if side not in ("BUY", "SELL"):
        return _bad("side must be BUY or SELL (Binance's order side: SELL liquidates a long)")
    try:
        price = _decimal_field(body, "price")
        qty = _decimal_field(body, "qty")
        average = _decimal_field(body, "averagePrice") if body.get("averagePrice") is not None else None
    except ValueError as problem:
        return _bad(str(problem))
    if price <= 0 or qty <= 0:
        return _bad("price and qty must be positive")
    message = sim.inject_liquidation(symbol, side, price, qty, average)
    return web.json_response(message)


async def control_fault(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await _json_body(request)
    try:
        fault = parse_fault(body)
    except ValueError as problem:
        return _bad(str(problem))
    if fault.mode == "drop_ws":
        dropped = await sim.hub.drop(fault.endpoint, fault.count)
        return web.json_response({"dropped": dropped})
    sim.faults.add(fault)
    return web.json_response({"queued": vars(fault)})


async def control_reset(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await _json_body(request) if request.can_read_body else {}
    try:
        equity = _decimal_field(body, "equity") if body.get("equity") is not None else sim.options.equity
    except ValueError as problem:
        return _bad(str(problem))
    if equity < 0:
        return _bad("equity must not be negative")
    sim.reset(equity)
    return web.json_response({"equity": str(equity)})


async def control_state(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return web.Response(text=dumps(sim.state()), content_type="application/json")


async def control_replay(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await _json_body(request) if request.can_read_body else {}
    try:
        speed = parse_speed(body["speed"]) if body.get("speed") is not None else None
        sim.start_replay(speed)
    except ValueError as problem:
        return _bad(str(problem))
    return web.json_response({"status": sim.replay_status})


# -- app -----------------------------------------------------------------------------------


def create_app(sim: Simulator) -> web.Application:
    app = web.Application(middlewares=[localhost_only])
    app[SIM_KEY] = sim
    for path, function in PUBLIC_ROUTES.items():
        app.router.add_get(path, _public_handler(function))
    for (method, path), function in PRIVATE_ROUTES.items():
        app.router.add_route(method, path, _private_handler(path, method, function))
    app.router.add_get("/v5/public/linear", public_ws)
    app.router.add_get("/v5/private", private_ws)
    app.router.add_get("/market/ws/{streams:.+}", binance_ws)
    app.router.add_get("/ws/{streams:.+}", binance_ws)
    app.router.add_get("/{kind:stream}", binance_ws)
    app.router.add_get("/market/{kind:stream}", binance_ws)
    app.router.add_post("/sim/price", control_price)
    app.router.add_post("/sim/liquidation", control_liquidation)
    app.router.add_post("/sim/fault", control_fault)
    app.router.add_post("/sim/reset", control_reset)
    app.router.add_get("/sim/state", control_state)
    app.router.add_post("/sim/replay", control_replay)

    async def on_startup(app):
        await sim.start()

    async def on_shutdown(app):
        await sim.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def serve(options: SimOptions, ready=None, stop_event: asyncio.Event | None = None) -> None:
    """Run until `stop_event` is set (or forever). `ready(port)` is called once listening."""
    sim = Simulator(options)
    app = create_app(sim)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else options.port
    if ready is not None:
        ready(port, sim)
    try:
        if stop_event is None:
            stop_event = asyncio.Event()
        await stop_event.wait()
    finally:
        await runner.cleanup()


def run(options: SimOptions) -> None:
    """Blocking entry point for `python -m simulator` and `manage.py run_sim`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main():
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop_event.set)
            except (NotImplementedError, RuntimeError):
                pass

        def ready(port, sim):
            mode = (
                f"replay of {options.data_dir} at speed {options.speed or 'max'}"
                if options.data_dir
                else f"still market, {len(sim.market.instruments)} symbols"
            )
            logger.info(
                "simulator listening on http://%s:%s (%s); rate tier %s",
                options.host,
                port,
                mode,
                options.rate_tier,
            )

        await serve(options, ready, stop_event)

    asyncio.run(main())
