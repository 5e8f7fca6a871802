"""Accounts with something in them: the open books that dashboard, panic and flatten tests act
on, and the configured coin (a WL coin row) the dashboard's book includes."""

from __future__ import annotations

from decimal import Decimal

from trading.bybit import OrderType
from trading.rules import Side


def make_coin(symbol: str):
    """A configured coin: 0.5 % offsets, 100 USDT x10 orders, TP 1 %, SL 2 %, no entry cooldown."""
    from trading.models import Coin  # a model: imported once Django is set up

    return Coin.objects.create(
        symbol=symbol,
        long_offset_pct=Decimal("0.5"),
        short_offset_pct=Decimal("0.5"),
        min_liquidation_usdt=Decimal("1000"),
        order_size_usdt=Decimal("100"),
        leverage=10,
        take_profit_pct=Decimal("1"),
        stop_loss_pct=Decimal("2"),
        entry_cooldown_seconds=0,
    )


def open_book(gateway, *, with_tpsl: bool = True):
    """A long (BTC) and a short (ETH), each with TP and SL unless `with_tpsl` is false, and a
    resting limit buy (SOL)."""
    gateway.place_order(
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal("0.010"),
        order_link_id="t-long",
        reference_price=Decimal("97000"),
    )
    if with_tpsl:
        gateway.set_trading_stop(
            symbol="BTCUSDT",
            position_side=Side.BUY,
            take_profit=Decimal("100000.0"),
            stop_loss=Decimal("95000.0"),
        )
    gateway.place_order(
        symbol="ETHUSDT",
        side=Side.SELL,
        qty=Decimal("0.50"),
        order_link_id="t-short",
        reference_price=Decimal("3300"),
    )
    if with_tpsl:
        gateway.set_trading_stop(
            symbol="ETHUSDT",
            position_side=Side.SELL,
            take_profit=Decimal("3100.00"),
            stop_loss=Decimal("3400.00"),
        )
    gateway.place_order(
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("1.0"),
        order_link_id="t-resting",
        order_type=OrderType.LIMIT,
        price=Decimal("150.000"),
    )
    return gateway


def three_owner_book(gateway):
    """BTC long with TP/SL (a configured coin: WL), ETH short (the caller puts it in the PM set),
    SOL long (nobody's: manual), a resting SOL limit buy of the portfolio's (by its orderLinkId)
    and a manual resting BTC limit sell."""
    make_coin("BTCUSDT")
    gateway.place_order(
        symbol="BTCUSDT",
        side=Side.BUY,
        qty=Decimal("0.010"),
        order_link_id="t-btc",
        reference_price=Decimal("97000"),
    )
    gateway.set_trading_stop(
        symbol="BTCUSDT", position_side=Side.BUY, take_profit=Decimal("99000.0"), stop_loss=Decimal("95000.0")
    )
    gateway.place_order(
        symbol="ETHUSDT",
        side=Side.SELL,
        qty=Decimal("0.50"),
        order_link_id="t-eth",
        reference_price=Decimal("3300"),
    )
    gateway.place_order(
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("2.0"),
        order_link_id="t-sol",
        reference_price=Decimal("180"),
    )
    gateway.place_order(
        symbol="SOLUSDT",
        side=Side.BUY,
        qty=Decimal("1.0"),
        order_link_id="pm-entry-SOL-0123456789abcdef",
        order_type=OrderType.LIMIT,
        price=Decimal("150.000"),
    )
    gateway.place_order(
        symbol="BTCUSDT",
        side=Side.SELL,
        qty=Decimal("0.001"),
        order_link_id="by-hand-1",
        order_type=OrderType.LIMIT,
        price=Decimal("120000.0"),
        reduce_only=True,
    )
    return gateway
