"""The Bybit adapter, the only code that speaks pybit: ``from trading.bybit import BybitGateway, Position``.

The retry and thread-safety policy is stated once, in ``trading.bybit.gateway``.
"""

from trading.bybit.batch import BATCH_LIMIT
from trading.bybit.gateway import BybitGateway
from trading.bybit.types import (
    ApiKeyInfo,
    BatchItemResult,
    ClosedPnl,
    CoinBalance,
    ExchangeMode,
    Execution,
    Kline,
    Order,
    OrderAck,
    OrderRef,
    OrderRequest,
    OrderType,
    Position,
    PositionMode,
    PublicTrade,
    RateLimitStatus,
    Ticker,
    TimeInForce,
    TransactionLog,
    TransactionLogEntry,
    Wallet,
)

__all__ = [
    "ApiKeyInfo",
    "BATCH_LIMIT",
    "BatchItemResult",
    "BybitGateway",
    "ClosedPnl",
    "CoinBalance",
    "ExchangeMode",
    "Execution",
    "Kline",
    "Order",
    "OrderAck",
    "OrderRef",
    "OrderRequest",
    "OrderType",
    "Position",
    "PositionMode",
    "PublicTrade",
    "RateLimitStatus",
    "Ticker",
    "TimeInForce",
    "TransactionLog",
    "TransactionLogEntry",
    "Wallet",
]
