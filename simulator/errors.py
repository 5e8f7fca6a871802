"""The simulator's own error: a Bybit retCode and retMsg, nothing about HTTP."""


class SimError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Bybit's texts (docs/v5/error.mdx), except 110017 which keeps the long-standing live
# wording that clients and the project's notes match on.
PARAMS_ERROR = 10001
REQUEST_EXPIRED = 10002
INVALID_KEY = 10003
INVALID_SIGN = 10004
PERMISSION_DENIED = 10005
TOO_MANY_VISITS = 10006
ORDER_NOT_FOUND = 110001
INSUFFICIENT_AVAILABLE = 110007
REDUCE_ONLY_NOT_SATISFIED = 110017
TOO_MANY_ACTIVE_ORDERS = 110020
POSITION_EXISTS = 110024
MODE_NOT_MODIFIED = 110025
LEVERAGE_NOT_MODIFIED = 110043
DUPLICATE_ORDER_LINK_ID = 110072
NOTIONAL_TOO_LOW = 110094
TPSL_NOT_MODIFIED = 34040

MESSAGES = {
    REQUEST_EXPIRED: (
        "invalid request, please check your server timestamp or recv_window param. "
        "req_timestamp[{timestamp}],server_timestamp[{server}],recv_window[{recv_window}]"
    ),
    INVALID_KEY: "API key is invalid.",
    INVALID_SIGN: "Error sign, please check your signature generation algorithm.",
    PERMISSION_DENIED: "Permission denied, please check your API key permissions.",
    TOO_MANY_VISITS: "Too many visits!",
    ORDER_NOT_FOUND: "Order does not exist.",
    INSUFFICIENT_AVAILABLE: "ab not enough for new order",
    REDUCE_ONLY_NOT_SATISFIED: "Reduce-only rule not satisfied",
    TOO_MANY_ACTIVE_ORDERS: "Not allowed to have more than 500 active orders.",
    POSITION_EXISTS: "You have an existing position, so the position mode cannot be switched.",
    MODE_NOT_MODIFIED: "Position mode is not modified",
    LEVERAGE_NOT_MODIFIED: "leverage not modified",
    DUPLICATE_ORDER_LINK_ID: "OrderLinkedID is duplicate",
    NOTIONAL_TOO_LOW: "Order does not meet minimum order value {minimum}USDT",
    TPSL_NOT_MODIFIED: "not modified",
}


def error(code: int, **details) -> SimError:
    return SimError(code, MESSAGES[code].format(**details) if details else MESSAGES[code])
