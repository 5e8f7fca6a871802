"""`manage.py portfolio_scan [--dry-run]` against the simulator: one pass now, what it did and why."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from portfolio.models import PortfolioPosition, PortfolioSettings, PortfolioState
from tests.support.portfolio import allow
from tests.support.sim import set_prices, sim_orders, sim_positions
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def command_settings(settings, sim, redis_db):
    """`BybitGateway.from_settings()` reaches the simulator."""
    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY = sim.api_key
    settings.SIM_API_SECRET = sim.api_secret
    settings.TELEGRAM_BOT_TOKEN = ""
    return settings


def run(capsys, *args) -> list[str]:
    call_command("portfolio_scan", *args)
    return capsys.readouterr().out.splitlines()


@pytest.fixture
def risen(sim, pm):
    """XRP up 10 % over the lookback (an entry), LINK down 5 % (below the 2 % minimum)."""
    allow("XRPUSDT", "LINKUSDT")
    set_prices(sim, XRPUSDT="2.7500", LINKUSDT="19.000")
    return pm


def test_dry_run_decides_and_sends_nothing(sim, command_settings, risen, capsys):
    journal_before = Decision.objects.count()

    lines = run(capsys, "--dry-run")

    assert lines[0] == "Dry run: decided only; no order sent, nothing written."
    assert "Trail: PM holds no position. Scan: scanned the allowlist" in lines[1]
    assert "allowlist since the last scan: added LINKUSDT, XRPUSDT, removed -" in lines
    assert (
        "enter XRPUSDT: would buy 18 at 2.75 (49.5 USDT), top_momentum (momentum_pct 10.0000, rank 1)"
        in lines
    )
    assert "enter LINKUSDT: skipped below_min_momentum (momentum_pct -5.0000)" in lines
    assert sim_orders(sim) == [] and sim_positions(sim) == {}
    assert Decision.objects.count() == journal_before
    assert not PortfolioPosition.objects.exists()
    state = PortfolioState.load()
    assert (state.last_scan_at, state.allowlist_seen) == (None, [])


def test_it_enters_after_a_rise_and_says_why_it_skipped_the_rest(sim, command_settings, risen, capsys):
    lines = run(capsys)

    assert "Trail: PM holds no position. Scan: scanned the allowlist" in lines[0]
    assert "allowlist: taken allowlist_changed (added LINKUSDT, XRPUSDT)" in lines
    entry = next(line for line in lines if line.startswith("enter XRPUSDT: taken top_momentum"))
    assert "momentum_pct 10.0000" in entry and "qty 18" in entry and "fill_price 2.7503" in entry
    assert "enter LINKUSDT: skipped below_min_momentum (momentum_pct -5.0000, min_momentum_pct 2)" in lines
    assert "backstop XRPUSDT: taken entry (distance 0.1651)" in lines
    assert sim_positions(sim)["XRPUSDT"]["size"] == "18"
    assert PortfolioPosition.objects.get().status == "open"
    assert PortfolioState.load().allowlist_seen == ["LINKUSDT", "XRPUSDT"]

    # At once again (a scan is not due for an hour): it scans anyway, and the trail pass exits.
    allow("DOGEUSDT")
    set_prices(sim, XRPUSDT="2.6000")  # under 2.7503 x 0.95 = 2.6128
    lines = run(capsys)
    assert "Trail: checked PM's positions. Scan: scanned the allowlist" in lines[0]
    assert "exit XRPUSDT: taken trailing_stop (qty 18, price 2.6, filled_qty 18, fill_price 2.5997" in (
        " ".join(lines)
    )
    assert "allowlist: taken allowlist_changed (added DOGEUSDT)" in lines
    assert "enter DOGEUSDT: skipped below_min_momentum (momentum_pct 0.0000, min_momentum_pct 2)" in lines
    assert sim_positions(sim) == {}


def test_dry_run_names_the_exit_and_the_add_it_would_send(sim, gateway, command_settings, risen, capsys):
    run(capsys)  # XRP held: 18 at 2.7503
    sent = len(sim_orders(sim))
    set_prices(sim, XRPUSDT="2.6000")  # PM's stop; the exchange's is at 2.75 - 0.1651 = 2.5849
    lines = run(capsys, "--dry-run")
    assert "exit XRPUSDT: would sell PM's share, trailing_stop: price 2.6 <= 2.6128" in " ".join(lines)
    set_prices(sim, XRPUSDT="2.8400")
    lines = run(capsys, "--dry-run")
    assert any(
        line.startswith(
            "add XRPUSDT: would buy one more leg, pyramid_step: price 2.84 >= 3 % over the last leg 2.7503"
        )
        for line in lines
    ), lines
    assert len(sim_orders(sim)) == sent and sim_positions(sim)["XRPUSDT"]["size"] == "18"
    assert PortfolioPosition.objects.get().high_water_price == Decimal("2.7503")


def test_a_disabled_strategy_enters_nothing(sim, command_settings, risen, capsys):
    PortfolioSettings.objects.update(enabled=False)
    lines = run(capsys)
    assert "Scan: PM is disabled" in lines[0]
    assert sim_orders(sim) == []
