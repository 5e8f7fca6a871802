"""The order body the gateway sends and the backtest hands the simulator: exact keys and strings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trading.rules import Side
from trading.rules.order_body import order_body, plain


def test_a_market_entry_carries_its_tp_and_sl_in_plain_notation():
    body = order_body(
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal("0.001"),
        order_link_id="wl-entry-abc",
        position_idx=0,
        take_profit=Decimal("97000.10"),
        stop_loss=Decimal("9.5E+4"),
    )
    assert body == {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Market",
        "qty": "0.001",
        "orderLinkId": "wl-entry-abc",
        "positionIdx": 0,
        "takeProfit": "97000.10",
        "stopLoss": "95000",
    }
    # The venue reads the keys in this order in its logs; the gateway always sent them so.
    assert list(body)[:7] == ["category", "symbol", "side", "orderType", "qty", "orderLinkId", "positionIdx"]


def test_a_reduce_only_limit_order_has_its_price_and_time_in_force_and_no_tp_sl():
    body = order_body(
        symbol="ETHUSDT",
        side=Side.SELL,
        qty=Decimal("1E+1"),
        order_link_id="close-1",
        position_idx=2,
        order_type="Limit",
        price=Decimal("3000.5"),
        time_in_force="PostOnly",
        reduce_only=True,
    )
    assert body == {
        "category": "linear",
        "symbol": "ETHUSDT",
        "side": "Sell",
        "orderType": "Limit",
        "qty": "10",
        "orderLinkId": "close-1",
        "positionIdx": 2,
        "price": "3000.5",
        "timeInForce": "PostOnly",
        "reduceOnly": True,
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [("1E-7", "0.0000001"), ("1E+3", "1000"), ("0.10", "0.10"), ("66666.6", "66666.6")],
)
def test_plain_never_writes_an_exponent(value, text):
    assert plain(Decimal(value)) == text
