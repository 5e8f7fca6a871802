"""Fixtures for the risk manager: the shared gateway trying reads once, alerts to one chat on the
Bot API stand-in."""

from __future__ import annotations

import pytest

from tests.support.telegram import OWNER, TOKEN, BotApiStandIn


@pytest.fixture
def gateway_options() -> dict:
    """Reads try once so fault tests stay fast."""
    return {"max_attempts": 1}


@pytest.fixture
def alerts(settings, bot_api) -> BotApiStandIn:
    """Alerts go to the local Bot API stand-in, OWNER the only allowlisted chat; read them from
    `alerts.sent`."""
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_ALLOWED_CHAT_IDS = frozenset({OWNER})
    settings.TELEGRAM_API_BASE_URL = bot_api.base_url
    return bot_api
