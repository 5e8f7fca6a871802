"""/pnl: realised PnL per strategy, today and the last 7 days, through the real PTB client
against the Bot API stand-in, from closes synced from the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from risk.closed_pnl import closed_pnl_sync_step
from risk.models import ClosedPnl
from telegram_bridge.services import pnl_text
from tests.support.sim import set_prices
from tests.support.telegram import OWNER
from trading.models import Decision
from trading.rules import Side

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


def _close(*, strategy: str, at: datetime, pnl: str, fees: str, order_id: str) -> None:
    ClosedPnl.objects.create(
        order_id=order_id,
        symbol="ETHUSDT",
        side="long",
        closed_qty=D("0.1"),
        avg_entry_price=D("3300"),
        avg_exit_price=D("3350"),
        closed_pnl=D(pnl),
        open_fee=D(fees) / 2,
        close_fee=D(fees) / 2,
        strategy=strategy,
        closed_at=at,
    )


@pytest.mark.django_db
def test_it_says_today_and_the_last_7_days_per_strategy():
    _close(strategy="WL", at=NOW - timedelta(hours=1), pnl="12.5", fees="1.1", order_id="a")
    _close(strategy="PM", at=NOW - timedelta(days=3), pnl="-1234.5", fees="2", order_id="b")
    _close(strategy="PM", at=NOW - timedelta(days=2), pnl="4", fees="0.5", order_id="c")
    _close(strategy="manual", at=NOW - timedelta(days=8), pnl="99", fees="1", order_id="d")  # too old
    assert pnl_text(now=NOW).splitlines() == [
        "Realised PnL in USDT (closed positions, net of fees):",
        "Today (2026-12-04 UTC):",
        "  WL: +12.50 (fees 1.10, 1 close)",
        "  PM: 0.00",
        "  manual: 0.00",
        "  total: +12.50 (fees 1.10, 1 close)",
        "Last 7 days:",
        "  WL: +12.50 (fees 1.10, 1 close)",
        "  PM: -1,230.50 (fees 2.50, 2 closes)",
        "  manual: 0.00",
        "  total: -1,218.00 (fees 3.60, 3 closes)",
    ]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_pnl_answers_with_a_wl_and_a_pm_trade_closed_at_the_simulator(running_bot, bot_api, gateway, sim):
    for strategy, action, symbol, qty, price, exit_price in (
        ("wl", "open_long", "BTCUSDT", "0.010", "97000", "98000.00"),
        ("pm", "enter", "ETHUSDT", "0.10", "3300", "3200.00"),
    ):
        gateway.place_order(
            symbol=symbol,
            side=Side.BUY,
            qty=D(qty),
            order_link_id=f"{strategy}-entry-{symbol[:3]}-0123456789abcdef",
            reference_price=D(price),
        )
        Decision.objects.create(strategy=strategy, symbol=symbol, action=action, outcome="taken")
        set_prices(sim, **{symbol: exit_price})
        (position,) = gateway.positions(symbol=symbol)
        gateway.close_position(
            position=position, order_link_id=f"{strategy}-exit-{symbol[:3]}-0123456789abcdef"
        )
    assert closed_pnl_sync_step(gateway=gateway, now=timezone.now()).created == 2
    wl, pm = ClosedPnl.objects.get(strategy="WL"), ClosedPnl.objects.get(strategy="PM")

    bot_api.message_from(OWNER, "/pnl")
    [reply] = bot_api.wait_sent(1)

    lines = reply.text.splitlines()
    assert reply.chat_id == OWNER and lines[0] == "Realised PnL in USDT (closed positions, net of fees):"
    today = lines[2:6]
    assert today[0].startswith(f"  WL: +{wl.closed_pnl.quantize(D('0.01'))} (fees ")
    assert today[1].startswith(f"  PM: {pm.closed_pnl.quantize(D('0.01'))} (fees ")
    assert today[2] == "  manual: 0.00"
    assert lines[7:11] == today
