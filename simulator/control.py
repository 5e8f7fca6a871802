"""The /sim/ control surface for tests and demos: set prices, inject liquidations and faults,
move money in and out, price other coins as collateral, reset, read the state, start the
replay. JSON, no signing, localhost only.
"""

from decimal import Decimal

from aiohttp import web

from .faults import parse_fault
from .numbers import NumberError, parse_decimal
from .options import parse_speed
from .simulator import SIM_KEY
from .streams import dumps


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


async def control_transfer(request: web.Request) -> web.Response:
    """`{"amount": "200"}` deposits 200 USDT, `{"amount": "-200"}` withdraws it; `"coin": "BTC"`
    moves another coin (priced first with /sim/collateral). The wallet changes, the transaction
    log gets a TRANSFER_IN/TRANSFER_OUT row and the wallet stream pushes the new balance."""
    sim = request.app[SIM_KEY]
    body = await _json_body(request)
    coin = body.get("coin", "USDT")
    if not isinstance(coin, str) or not coin.isalnum() or not coin.isupper():
        return _bad("coin must be an uppercase coin name such as USDT or BTC")
    try:
        entry = sim.exchange.transfer(coin, _decimal_field(body, "amount"))
    except ValueError as problem:
        return _bad(str(problem))
    sim.flush()
    return web.json_response(
        {"id": entry.entry_id, "type": entry.type, "coin": coin, "balance": str(entry.cash_balance)}
    )


async def control_collateral(request: web.Request) -> web.Response:
    """`{"coin": "BTC", "usdPrice": "60000", "collateralRatio": "0.8"}`: the coin's USD price and
    collateral value ratio (1 - haircut) from now on; its amount changes with /sim/transfer."""
    sim = request.app[SIM_KEY]
    body = await _json_body(request)
    coin = body.get("coin")
    if not isinstance(coin, str) or not coin.isalnum() or not coin.isupper():
        return _bad("coin must be an uppercase coin name such as BTC or USDC")
    try:
        holding = sim.exchange.collateral_set(
            coin, _decimal_field(body, "usdPrice"), _decimal_field(body, "collateralRatio")
        )
    except ValueError as problem:
        return _bad(str(problem))
    sim.flush()
    return web.json_response(
        {
            "coin": coin,
            "amount": str(holding.amount),
            "usdPrice": str(holding.usd_price),
            "collateralRatio": str(holding.collateral_ratio),
        }
    )


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


async def control_faults_clear(request: web.Request) -> web.Response:
    """Drop every queued fault (the rest of the state stays): a script that needs the next
    order to go through clears what earlier steps left pending."""
    sim = request.app[SIM_KEY]
    cleared = len(sim.faults.pending())
    sim.faults.clear()
    return web.json_response({"cleared": cleared})


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


async def control_settings(request: web.Request) -> web.Response:
    """`{"rateTier": "pro1", "latencyMs": 25, "dcpEnabled": true}` (any of them): the rate tier
    (with a fresh window), the latency added to every REST answer and whether the account has
    DCP, until changed again or the next /sim/reset."""
    sim = request.app[SIM_KEY]
    body = await _json_body(request)
    tier = body.get("rateTier")
    latency = body.get("latencyMs")
    dcp_enabled = body.get("dcpEnabled")
    if dcp_enabled is not None and not isinstance(dcp_enabled, bool):
        return _bad("dcpEnabled must be true or false")
    if tier is not None and not isinstance(tier, str | int):
        return _bad("rateTier must be a tier name, a number or off")
    if latency is not None and (not isinstance(latency, int) or isinstance(latency, bool) or latency < 0):
        return _bad("latencyMs must be a non-negative integer")
    try:
        sim.configure(
            rate_tier=None if tier is None else str(tier), latency_ms=latency, dcp_enabled=dcp_enabled
        )
    except ValueError as problem:
        return _bad(str(problem))
    return web.json_response(sim.settings())


async def control_state(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return web.Response(text=dumps(sim.state()), content_type="application/json")


async def control_record(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return web.Response(text=dumps(sim.record()), content_type="application/json")


async def control_replay(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await _json_body(request) if request.can_read_body else {}
    try:
        speed = parse_speed(body["speed"]) if body.get("speed") is not None else None
        sim.start_replay(speed)
    except ValueError as problem:
        return _bad(str(problem))
    return web.json_response({"status": sim.replay_status})
