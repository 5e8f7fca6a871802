"""The REST edge around every Bybit endpoint (rest_market.py, rest_trade.py).

Handlers are thin: check the signature, the rate limit and injected faults, call the
endpoint, wrap the answer in Bybit's envelope.
"""

import asyncio
import json
import time
from urllib.parse import parse_qsl

from aiohttp import web

from . import signing
from .errors import MESSAGES, PARAMS_ERROR, TOO_MANY_VISITS, SimError
from .market import wall_ms
from .simulator import SIM_KEY, Simulator
from .streams import dumps

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


def public_handler(function):
    async def handle(request: web.Request) -> web.Response:
        sim = request.app[SIM_KEY]
        path = request.path
        if sim.latency_ms:
            await asyncio.sleep(sim.latency_ms / 1000)  # the round trip the setting adds
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
    message = fault.message or DEFAULT_MESSAGES.get(code) or MESSAGES.get(code, "injected error")
    return _json_response(envelope({}, code, message), headers)


def private_handler(path: str, method: str, function):
    async def handle(request: web.Request) -> web.Response:
        received_ns = time.time_ns()
        sim = request.app[SIM_KEY]
        if sim.latency_ms:
            await asyncio.sleep(sim.latency_ms / 1000)  # the round trip the setting adds
            received_ns = time.time_ns()
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
        if fault is None and path == ORDER_CREATE and isinstance(body, dict):
            fault = sim.faults.take(path, symbol=str(body.get("symbol", "")))
        hold_ms = 0
        if fault is not None:
            if fault.mode == "error":
                _record_refused(sim, path, body, fault.ret_code or fault.http_status or 10016, received_ns)
            if fault.mode == "drop":
                return _drop(request)
            response = await _apply_fault_before(fault, headers)
            if response is not None:
                return response
            if fault.mode == "accept_then_timeout":
                hold_ms = fault.latency_ms
        try:
            if body is None:
                raise SimError(PARAMS_ERROR, "params error: the body is not a JSON object")
            if path == ORDER_BATCH:
                result, ext = function(
                    sim, body, received_ns, granted, lambda symbol: sim.faults.take(path, symbol=symbol)
                )
            else:
                result, ext = function(sim, body, received_ns), None
            text = envelope(result, ext=ext)
        except SimError as refusal:
            text = envelope({}, refusal.code, refusal.message)
        sim.flush()
        if fault is not None and fault.mode == "accept_then_drop":
            return _drop(request)  # handled (an order stands), but the answer never arrives
        if hold_ms:
            # The order stands; the answer comes after the client has given up waiting.
            await sim.hold(hold_ms)
        return _json_response(text, headers)

    return handle


def _drop(request: web.Request) -> web.Response:
    """Cut the connection without an answer: the client sees it closed mid-request."""
    request.transport.close()
    return web.Response(status=204)  # never written: the transport is closed


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
