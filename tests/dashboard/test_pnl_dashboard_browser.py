"""Realised PnL per strategy on the live dashboard, in headless Chromium against the real web
process: a WL and a PM trade closed at the simulator, synced by the worker's step, appear in
the card and the chart without a reload."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.text import money_text
from tests.support.browser import dashboard_page, manage, running_web
from tests.support.sim import set_prices
from trading.rules import Side

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WL_ENTRY = "wl-entry-BTC-0123456789abcdef"
PM_ENTRY = "pm-entry-ETH-0123456789abcdef"

# The owner, and the journal rows the strategies wrote when they entered.
SEED = f"""
from django.contrib.auth.models import User
from trading.models import Decision
User.objects.create_superuser('owner', '', 'pw-owner-1')
Decision.objects.create(strategy='wl', symbol='BTCUSDT', action='open_long', outcome='taken',
    order_link_id='{WL_ENTRY}')
Decision.objects.create(strategy='pm', symbol='ETHUSDT', action='enter', outcome='taken',
    order_link_id='{PM_ENTRY}')
"""

# What the worker's beat runs every 30 s (risk.closed_pnl_sync), on the web process's database.
SYNC = """
import json
from django.utils import timezone
from risk.closed_pnl import closed_pnl_sync_step
from risk.models import ClosedPnl
from trading.bybit import BybitGateway
gateway = BybitGateway.from_settings()
gateway.prepare()
result = closed_pnl_sync_step(gateway=gateway, now=timezone.now())
print(json.dumps({"summary": result.summary(),
                  "pnl": {row.strategy: str(row.closed_pnl) for row in ClosedPnl.objects.all()}}))
"""


def _row(page, strategy: str) -> list[str]:
    return page.locator(f"#pnl-body tr[data-strategy={strategy}] td").all_inner_texts()


def test_a_wl_and_a_pm_trade_closed_at_the_simulator_show_per_strategy(
    tmp_path, settings, sim, gateway, chromium
):
    sim_env = {"SIM_BASE_URL": sim.base_url, "SIM_API_KEY": sim.api_key, "SIM_API_SECRET": sim.api_secret}
    with running_web(
        tmp_path, settings.REDIS_URL, setup=(SEED,), DASHBOARD_PUSH_INTERVAL_S="0.5", **sim_env
    ) as (
        base_url,
        env,
    ):
        page, script_errors = dashboard_page(chromium, base_url)

        # Nothing closed yet: every strategy at zero, a chart of 30 empty days.
        assert _row(page, "WL") == ["WL", "0.00", "0.00", "0.00"]
        assert _row(page, "total") == ["total", "0.00", "0.00", "0.00"]
        assert page.evaluate("Chart.getChart('pnl-chart').data.labels.length") == 30
        page.wait_for_function("document.getElementById('live-status').textContent === 'live'")
        page.evaluate("window.notReloaded = true")

        # WL's long is closed by its take-profit at Bybit; PM's by the portfolio's exit.
        gateway.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            qty=Decimal("0.010"),
            order_link_id=WL_ENTRY,
            reference_price=Decimal("97000"),
        )
        gateway.set_trading_stop(symbol="BTCUSDT", position_side=Side.BUY, take_profit=Decimal("98000.0"))
        set_prices(sim, BTCUSDT="98500.00")
        gateway.place_order(
            symbol="ETHUSDT",
            side=Side.BUY,
            qty=Decimal("0.50"),
            order_link_id=PM_ENTRY,
            reference_price=Decimal("3300"),
        )
        set_prices(sim, ETHUSDT="3250.00")
        (eth,) = gateway.positions(symbol="ETHUSDT")
        gateway.close_position(position=eth, order_link_id="pm-exit-ETH-0123456789abcdef")
        assert not gateway.positions()

        output = manage({**env, "CONTROLPANEL_PROCESS": "worker"}, "shell", "-c", SYNC)
        synced = json.loads(output.strip().splitlines()[-1])  # after the shell's own banner
        assert synced["summary"]["created"] == 2 and set(synced["pnl"]) == {"WL", "PM"}
        wl, pm = Decimal(synced["pnl"]["WL"]), Decimal(synced["pnl"]["PM"])
        assert wl > 0 > pm

        # The next push shows them, per strategy, and the chart's today bar.
        wl_text, pm_text = money_text(wl, signed=True), money_text(pm, signed=True)
        page.wait_for_function(
            "document.querySelector('#pnl-body tr[data-strategy=WL] td:nth-child(2)').textContent === "
            f"'{wl_text}'",
            timeout=15000,  # a push every 0.5 s; generous for a loaded machine
        )
        assert _row(page, "WL")[:3] == ["WL", wl_text, wl_text]
        assert _row(page, "PM")[:3] == ["PM", pm_text, pm_text]
        assert _row(page, "manual")[:3] == ["manual", "0.00", "0.00"]
        assert _row(page, "total")[1] == money_text(wl + pm, signed=True)
        assert Decimal(_row(page, "total")[3]) > 0  # the fees
        today = page.evaluate(
            "Object.fromEntries(Chart.getChart('pnl-chart').data.datasets.map(d => [d.label, d.data.at(-1)]))"
        )
        assert today == {"WL": float(wl), "PM": float(pm), "manual": 0}
        assert page.locator("canvas#pnl-chart").bounding_box()["height"] > 100
        assert page.evaluate("window.notReloaded") is True
        assert script_errors == []
        page.screenshot(path=str(tmp_path / "pnl-dashboard.png"), full_page=True)
