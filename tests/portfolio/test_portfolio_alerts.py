"""PM's entries, exits and refused orders reach Telegram (the real PTB client on the Bot API
stand-in) from the scan and trail steps against the simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portfolio.scan import portfolio_scan_step
from portfolio.trail import portfolio_trail_step
from tests.support.portfolio import NOW, allow
from tests.support.sim import set_prices
from tests.support.telegram import OWNER

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_an_entry_a_refused_exit_and_the_exit_are_each_alerted(sim, gateway, pm, telegram_settings, bot_api):
    pm.pyramid_max_adds = 0  # one leg of 300 / 2 = 150 USDT: 54 XRP
    pm.save()
    allow("XRPUSDT")
    set_prices(sim, XRPUSDT="2.7500")
    assert portfolio_scan_step(gateway=gateway, now=NOW).entered == ["XRPUSDT"]

    sim.fault("/v5/order/create", mode="error", retCode=10001, count=1)
    # 5 % under the high-water mark: PM's trailing stop (the exchange's, 6 %, is at 2.5849)
    set_prices(sim, XRPUSDT="2.6000")
    assert portfolio_trail_step(gateway=gateway, now=NOW + timedelta(minutes=1)).failed == ["XRPUSDT"]
    assert portfolio_trail_step(gateway=gateway, now=NOW + timedelta(minutes=2)).exited == ["XRPUSDT"]

    entry, refused, exit_ = bot_api.sent_to(OWNER)
    assert entry.startswith("PM entry XRPUSDT long: 54 @ 2.7")
    assert refused.startswith("Order refused by Bybit: exit XRPUSDT: ") and refused.endswith(
        "(retCode 10001)."
    )
    assert exit_.startswith("PM exit XRPUSDT: sold 54 @ 2.5997") and exit_.endswith("(trailing_stop).")
