"""The websockets: Bybit's public and private streams, and Binance's liquidation stream.

Bybit's two endpoints share one connection loop and one op handler; a `BybitEndpoint`
says what differs between them: authentication, which topics exist, how ping is answered.
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from . import signing
from .market import INTERVALS, wall_ms
from .simulator import SIM_KEY, Simulator
from .streams import BINANCE, PRIVATE, PUBLIC, Connection

# pybit records a subscription (and the topic's callback) only after sending the request,
# so an answer that arrives before that makes its dispatcher fail with a KeyError and
# drop the connection. A real venue is a network round trip away; the simulator waits
# about one before acknowledging a subscription and starting its data.
SUBSCRIBE_ROUND_TRIP_S = 0.05

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


@dataclass(frozen=True)
class BybitEndpoint:
    """What differs between Bybit's public and private websockets."""

    kind: str  # PUBLIC or PRIVATE: which of the simulator's pushes reach the connection
    requires_auth: bool  # `auth` is an op here, and subscribing waits for it
    topic_ok: Callable[[Simulator, object], bool]
    pong: Callable[[Connection, object], None]  # Bybit answers ping differently on each
    answers_unparsable: bool  # whether text that is not a JSON object gets an error answer


async def _serve(sim: Simulator, ws: web.WebSocketResponse, connection: Connection, on_text) -> None:
    """The one connection loop: hand each text frame to `on_text` until the client goes."""
    sim.hub.add(connection)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            on_text(message.data)
    finally:
        sim.hub.remove(connection)
        if connection.dcp:
            connection.dcp = False
            sim.dcp_connection_gone()


def bybit_ws(endpoint: BybitEndpoint):
    """The aiohttp handler of one Bybit websocket endpoint."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        sim = request.app[SIM_KEY]
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        connection = Connection(ws, request.transport, endpoint.kind, request.path)
        await _serve(sim, ws, connection, lambda text: _bybit_op(sim, endpoint, connection, text))
        return ws

    return handle


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


def _bybit_op(sim: Simulator, endpoint: BybitEndpoint, connection: Connection, text: str) -> None:
    message = _parse_op(text)
    if message is None:
        if endpoint.answers_unparsable:
            connection.send_json(
                {
                    "success": False,
                    "ret_msg": "error:unknown message",
                    "conn_id": connection.conn_id,
                    "op": "",
                }
            )
        return
    op = message.get("op")
    req_id = message.get("req_id", "")
    if op == "ping":
        endpoint.pong(connection, req_id)
        return
    if op == "auth" and endpoint.requires_auth:
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
    if endpoint.requires_auth and connection.api_key is None:
        _op_answer(connection, op=op, req_id=req_id, success=False, ret_msg="Request not authorized")
        return
    args = message.get("args") if isinstance(message.get("args"), list) else []
    bad = [topic for topic in args if not endpoint.topic_ok(sim, topic)]
    if bad:
        _op_answer(
            connection, op=op, req_id=req_id, success=False, ret_msg=f"error:handler not found,topic:{bad[0]}"
        )
        return

    # `topic_ok` keeps each endpoint to its own topics: only private ones arm the DCP,
    # only public ones start with a snapshot.
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


def _private_topic_ok(sim: Simulator, topic) -> bool:
    return topic in PRIVATE_STREAM_TOPICS


def _public_pong(connection: Connection, req_id) -> None:
    _op_answer(connection, op="ping", req_id=req_id, success=True, ret_msg="pong")


def _private_pong(connection: Connection, req_id) -> None:
    connection.send_json(
        {"req_id": req_id, "op": "pong", "args": [str(wall_ms())], "conn_id": connection.conn_id}
    )


def _send_snapshot(sim: Simulator, connection: Connection, topic: str, now: int) -> None:
    """Tickers and klines start with the current state, as Bybit's do."""
    parts = topic.split(".")
    if parts[0] == "tickers":
        connection.send_json(sim.ticker_snapshot(parts[1], now))
    elif parts[0] == "kline":
        message = sim.kline_message(topic, parts[2], parts[1], now)
        if message is not None:
            connection.send_json(message)


PUBLIC_ENDPOINT = BybitEndpoint(
    kind=PUBLIC,
    requires_auth=False,
    topic_ok=_public_topic_ok,
    pong=_public_pong,
    answers_unparsable=True,
)
PRIVATE_ENDPOINT = BybitEndpoint(
    kind=PRIVATE,
    requires_auth=True,
    topic_ok=_private_topic_ok,
    pong=_private_pong,
    answers_unparsable=False,
)


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
    await _serve(sim, ws, connection, lambda text: _binance_op(connection, text))
    return ws


def _binance_op(connection: Connection, text: str) -> None:
    message = _parse_op(text)
    if message is None:
        return
    # Subscription management requests get Binance's plain acknowledgement.
    if message.get("method") in ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS"):
        connection.send_json({"result": None, "id": message.get("id")})
