"""Fixtures for the risk manager: a real gateway on the simulator, coins, a Bot API stand-in."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support import make_sim_gateway
from tests.telegram.bot_api_standin import BotApiStandIn
from trading.bybit import BybitGateway
from trading.models import Coin

BOT_TOKEN = "7000000002:AAF-risk-test-token-never-logged"
OWNER_CHAT = 4343


@pytest.fixture
def gateway(sim) -> BybitGateway:
    """A prepared gateway on the (reset) simulator; reads try once so fault tests stay fast."""
    return make_sim_gateway(sim, max_attempts=1)


def coin(symbol: str, *, take_profit_pct: str, stop_loss_pct: str, leverage: int = 10) -> Coin:
    return Coin.objects.create(
        symbol=symbol,
        long_offset_pct=Decimal("1"),
        short_offset_pct=Decimal("1"),
        min_liquidation_usdt=Decimal("1000"),
        order_size_usdt=Decimal("50"),
        leverage=leverage,
        take_profit_pct=Decimal(take_profit_pct),
        stop_loss_pct=Decimal(stop_loss_pct),
    )


@pytest.fixture
def bot_api():
    standin = BotApiStandIn(BOT_TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture
def alerts(settings, bot_api) -> BotApiStandIn:
    """Alerts go to the local Bot API stand-in; read them from `alerts.sent`."""
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    settings.TELEGRAM_ALLOWED_CHAT_IDS = frozenset({OWNER_CHAT})
    settings.TELEGRAM_API_BASE_URL = bot_api.base_url
    return bot_api
