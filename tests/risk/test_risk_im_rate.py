"""The IM watch acts on Bybit's accountIMRate (initial margin over the margin balance after haircuts),
on an account holding a hair-cut coin where initial margin over total equity is below the levels."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from risk.im_watch import im_watch_step
from tests.support.sim import market_order
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def wallet_figures(sim) -> tuple[Decimal, Decimal]:
    """(accountIMRate in %, initial margin / total equity in %) as the simulator reports them."""
    wallet = sim.state()["wallet"]
    rate = Decimal(wallet["accountIMRate"]) * 100
    return rate, Decimal(wallet["totalInitialMargin"]) / Decimal(wallet["totalEquity"]) * 100


@pytest.fixture
def collateralised(sim, gateway, redis_db):
    """1000 USDT and 0.01 BTC at 60 000 with a 50 % haircut (600 USD of equity, 300 of margin), and
    an ETH long holding 1099.01 USDT of initial margin (3.33 ETH at 3300.33, 10x)."""
    sim.reset(equity="1000")
    sim.collateral("BTC", "60000", "0.5")
    sim.transfer("0.01", coin="BTC")
    market_order(gateway, "ETHUSDT", Side.BUY, "3.33", "3300", "t-eth")
    return gateway


def test_it_warns_when_account_im_rate_passes_the_warn_level_though_im_over_equity_does_not(
    sim, collateralised, alerts
):
    rate, over_equity = wallet_figures(sim)
    assert Decimal("80") <= rate < Decimal("100") and over_equity < Decimal("70")

    result = im_watch_step(gateway=collateralised, now=NOW)

    assert result.action == "warn" and result.warned and result.im_pct == rate
    assert Decision.objects.get(action="im_warn").details["im_pct"] == str(rate.quantize(Decimal("0.01")))
    assert alerts.sent[0].text.startswith(f"IM {rate.quantize(Decimal('0.01'))} % is above the warn level 80")


def test_it_reduces_when_the_collateral_stops_counting_though_im_over_equity_is_unchanged(
    sim, collateralised, alerts
):
    sim.collateral("BTC", "60000", "0")  # the coin is still worth 600 USD, but no margin
    rate, over_equity = wallet_figures(sim)
    assert rate >= Decimal("100") and over_equity < Decimal("70")

    result = im_watch_step(gateway=collateralised, now=NOW)

    assert result.action == "reduce" and result.im_pct == rate and result.reduced
    [cut] = [o for o in sim.state()["orders"] if o["orderLinkId"].startswith("risk-")]
    assert (cut["symbol"], cut["side"], Decimal(cut["qty"]), cut["reduceOnly"]) == (
        "ETHUSDT",
        "Sell",
        Decimal("0.66"),  # 20 % of 3.33, down to the 0.01 step
        True,
    )
