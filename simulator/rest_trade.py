"""Bybit V5 private REST: orders, positions and the account (wallet, transaction log, executions,
closed PnL, DCP).

Each endpoint takes the simulator, the parsed request and when it arrived, and returns
Bybit's `result`; rest.py checks the signature and rate limit first and wraps the answer.
"""

from . import params as p
from . import payloads, payloads_wallet
from .errors import MESSAGES, PARAMS_ERROR, PERMISSION_DENIED, TOO_MANY_VISITS, SimError, error
from .market import wall_ms
from .rest import MAX_BATCH, ORDER_BATCH, ORDER_CREATE
from .simulator import Simulator


def _order_ack(order) -> dict:
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def order_create(sim: Simulator, request: dict, received_ns: int) -> dict:
    return _order_ack(sim.exchange.place_order(request, received_ns))


def order_create_batch(sim: Simulator, request: dict, received_ns: int, granted: int, item_fault=None):
    """Per-order results: retExtInfo.list[i] pairs with result.list[i]; the envelope says 0.
    `item_fault(symbol)` is an injected refusal for one order (faults.py), or None."""
    p.linear_category(request)
    items = request.get("request")
    if not isinstance(items, list) or not items:
        raise SimError(PARAMS_ERROR, "params error: request must be a non-empty list of orders")
    if len(items) > MAX_BATCH:
        raise SimError(PARAMS_ERROR, f"params error: at most {MAX_BATCH} orders per batch")
    results, codes = [], []
    for index, item in enumerate(items):
        created_at = str(wall_ms())
        injected = False
        if not isinstance(item, dict):
            item = {}
        symbol = item.get("symbol", "") if isinstance(item.get("symbol"), str) else ""
        try:
            if index >= granted:
                # The batch budget counts orders: what exceeds this second's budget fails alone.
                raise error(TOO_MANY_VISITS)
            fault = item_fault(symbol) if item_fault and symbol else None
            if fault is not None:
                injected = True
                message = fault.message or MESSAGES.get(fault.ret_code, "injected error")
                raise SimError(fault.ret_code, message)
            order = sim.exchange.place_order(dict(item, category="linear"), received_ns)
        except SimError as refusal:
            if index >= granted or injected:
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
    if not sim.dcp_enabled:
        # Bybit switches DCP on per account (institutional clients, through the account
        # manager); its docs do not say what the call answers on the other accounts. We
        # answer the closest documented code, 10005 "Permission denied": a refusal of the
        # account's rights that no retry cures, and one that looks like a refused key (our
        # gateway must not take it for one).
        raise error(PERMISSION_DENIED)
    sim.exchange.set_dcp(request)
    return {}


def query_dcp_info(sim: Simulator, request: dict, received_ns: int) -> dict:
    if not sim.dcp_enabled:
        return {"dcpInfos": []}  # our guess for an account without DCP: nothing configured
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
    return {"list": [payloads_wallet.wallet_row(sim.exchange.totals())]}


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


def transaction_log(sim: Simulator, request: dict, received_ns: int) -> dict:
    """The unified wallet's cash changes (ledger.py), newest first, 20 a page by default."""
    rows = sim.exchange.transaction_log(request)
    limit, offset = p.page(request, default=20, maximum=50)
    chunk, cursor = p.paginate(rows, limit, offset)
    instruments = sim.exchange.instruments
    return {
        "nextPageCursor": cursor,
        "list": [payloads_wallet.transaction_log_row(e, instruments.get(e.symbol)) for e in chunk],
    }


# When this simulator process started: its key's createdAt.
_STARTED_MS = wall_ms()


def api_key_info(sim: Simulator, request: dict, received_ns: int) -> dict:
    """The key's details and its account's UID (the simulator has one account, one key)."""
    return payloads.api_key_row(sim.options.api_key, _STARTED_MS)


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
    ("GET", "/v5/account/transaction-log"): transaction_log,
    ("GET", "/v5/account/query-dcp-info"): query_dcp_info,
    ("GET", "/v5/execution/list"): execution_list,
    ("GET", "/v5/position/closed-pnl"): closed_pnl,
    ("GET", "/v5/user/query-api"): api_key_info,
}
