"""The live dashboard in headless Chromium, served by the real web process (daphne) on a
real Redis: first paint, then updates over the websocket without a reload."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest
from django.utils import timezone

from core import keys
from risk.snapshot import account_snapshot_publish_step
from tests.support.browser import dashboard_page, running_web

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SEED = """
from datetime import timedelta
from decimal import Decimal as D
from django.contrib.auth.models import User
from django.utils import timezone
from risk.models import DailyPnL
from trading.models import Decision
from core import keys
User.objects.create_superuser('owner', '', 'pw-owner-1')
today = timezone.now().date()
DailyPnL.objects.create(date=today, baseline_equity=D('9800'), last_equity=D('10045'), pnl_usdt=D('245'),
    pnl_pct=D('2.5'), high_equity=D('10100'), low_equity=D('9790'))
DailyPnL.objects.create(date=today - timedelta(days=1), baseline_equity=D('10000'), last_equity=D('9800'),
    pnl_usdt=D('-200'), pnl_pct=D('-2'), high_equity=D('10000'), low_equity=D('9700'))
Decision.objects.create(strategy='risk', symbol='BTCUSDT', action='set_tpsl', outcome='taken',
    reason_code='tpsl_missing')
"""


def in_a_thread(function):
    """Run ``function`` in its own thread: Playwright's sync API owns this thread's event loop."""
    box = {}

    def main():
        try:
            box["result"] = function()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(timeout=30)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def group_send(message: dict) -> None:
    from channels.layers import get_channel_layer

    in_a_thread(lambda: asyncio.run(get_channel_layer().group_send(keys.DASHBOARD_GROUP, message)))


def test_the_dashboard_shows_the_account_and_updates_live(
    tmp_path, settings, sim, redis_db, three_owner_book, chromium
):
    gateway = three_owner_book
    redis_db.sadd(keys.PM_SYMBOLS, "ETHUSDT")

    def publish():
        """What the worker's beat does every 2 s."""
        in_a_thread(lambda: account_snapshot_publish_step(gateway=gateway, now=timezone.now()))

    publish()
    equity = gateway.wallet().total_equity

    # Pushes every 0.5 s, on a fresh seeded database.
    with running_web(tmp_path, settings.REDIS_URL, setup=(SEED,), DASHBOARD_PUSH_INTERVAL_S="0.5") as (
        base_url,
        _env,
    ):
        page, script_errors = dashboard_page(chromium, base_url)

        # The first paint, from the server.
        assert page.inner_text("#equity") == f"{equity.quantize(Decimal('0.01')):,}"
        positions = page.locator("#positions-body tr").all_inner_texts()
        owners = {row.split("\t")[0]: row.split("\t")[1] for row in positions}
        assert owners == {"BTCUSDT": "WL", "ETHUSDT": "PM", "SOLUSDT": "manual"}
        assert "99000.0" in next(row for row in positions if row.startswith("BTCUSDT"))  # its TP
        assert "pm-entry-SOL-0123456789abcdef" in page.inner_text("#orders-body")
        assert "tpsl_missing" in page.inner_text("#decisions-body")
        assert page.inner_text("#daily-pnl") == "+2.50 %"
        assert page.evaluate("Chart.getChart('equity-chart').data.datasets[0].data.length") >= 1
        assert page.evaluate("Chart.getChart('daily-chart').data.labels.length") == 2
        assert page.locator("canvas#equity-chart").bounding_box()["height"] > 100
        page.wait_for_function("document.getElementById('live-status').textContent === 'live'")
        page.evaluate("window.notReloaded = true")

        # An engine decision pushed to the group appears, without a reload.
        group_send(
            {
                "type": "journal.decisions",
                "decisions": [
                    {
                        "at_ms": int(timezone.now().timestamp() * 1000),
                        "strategy": "wl",
                        "symbol": "SOLUSDT",
                        "action": "open_short",
                        "outcome": "skipped",
                        "reason_code": "offset_not_met",
                        "order_link_id": "",
                    }
                ],
            }
        )
        page.wait_for_selector("#decisions-body tr.fresh >> text=offset_not_met", timeout=5000)
        group_send(
            {
                "type": "liquidations",
                "liquidations": [
                    {
                        "at_ms": 1,
                        "symbol": "BTCUSDT",
                        "side": "long",
                        "price": "95000",
                        "qty": "0.5",
                        "notional": "47500",
                        "result": "entry",
                    }
                ],
            }
        )
        page.wait_for_selector("#liquidations-body >> text=47,500.00", timeout=5000)

        # The worker publishes a new snapshot (the price moved, SOL was closed): the periodic push shows it.
        sim.set_price("BTCUSDT", "98000.00")
        gateway.close_position(
            position=next(p for p in gateway.positions() if p.symbol == "SOLUSDT"),
            order_link_id="t-close-sol",
        )
        publish()
        new_equity = f"{gateway.wallet().total_equity.quantize(Decimal('0.01')):,}"
        assert new_equity != page.inner_text("#equity")
        page.wait_for_function(
            f"document.getElementById('equity').textContent === '{new_equity}'", timeout=5000
        )
        page.wait_for_function("!document.getElementById('positions-body').textContent.includes('SOLUSDT')")
        assert page.evaluate("window.notReloaded") is True
        assert script_errors == []
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
