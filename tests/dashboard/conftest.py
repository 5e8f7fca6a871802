"""Dashboard fixtures: an account on the simulator, logged-in users, websocket connections
through the project's real ASGI stack (network check, origin check, session, consumer).
``gateway`` is the shared prepared gateway of tests/conftest.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from channels.testing import WebsocketCommunicator

from trading.bybit import OrderType
from trading.models import Coin
from trading.rules import Side

LOOPBACK = ("127.0.0.1", 50000)


def make_coin(symbol: str) -> Coin:
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


@pytest.fixture
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


@pytest.fixture
def fast_push(settings):
    settings.DASHBOARD_PUSH_INTERVAL_S = 0.2
    return settings


def session_cookie(client, user) -> str:
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
def staff_cookie(client, django_user_model) -> str:
    user = django_user_model.objects.create_user("owner", password="pw-owner-123", is_staff=True)
    return session_cookie(client, user)


def communicator(
    *, cookie: str | None = None, client=LOOPBACK, origin: str = "http://127.0.0.1"
) -> WebsocketCommunicator:
    """A websocket to /ws/dashboard/ through controlpanel.asgi, from ``client`` (host, port)."""
    from controlpanel.asgi import application

    async def from_client(scope, receive, send):
        return await application({**scope, "client": client}, receive, send)

    headers = [(b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(from_client, "/ws/dashboard/", headers=headers)


async def receive_type(ws: WebsocketCommunicator, wanted: str, timeout_s: float = 5.0) -> dict:
    """The next message of type ``wanted``, skipping the others (periodic snapshots)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        remaining = deadline - loop.time()
        assert remaining > 0, f"no {wanted!r} message within {timeout_s} s"
        message = await ws.receive_json_from(timeout=remaining)
        if message["type"] == wanted:
            return message
