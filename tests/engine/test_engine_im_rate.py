"""The engine's IM guard acts on Bybit's accountIMRate (initial margin over the margin balance after
haircuts), fed by the private wallet stream and the REST reconcile, on an account holding a
hair-cut coin where initial margin over total equity stays below the levels."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.engine import entry_orders, move_price
from tests.support.sim import make_sim_gateway
from tests.support.waiting import wait_until
from trading.models import Decision
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wallet_figures(sim) -> tuple[Decimal, Decimal]:
    """(accountIMRate in %, initial margin / total equity in %) as the simulator reports them."""
    wallet = sim.state()["wallet"]
    rate = Decimal(wallet["accountIMRate"]) * 100
    over_equity = Decimal(wallet["totalInitialMargin"]) / Decimal(wallet["totalEquity"]) * 100
    return rate, over_equity


def skipped(reason: str) -> Decision | None:
    return Decision.objects.filter(outcome="skipped", reason_code=reason).first()


def test_the_entry_guard_warns_and_blocks_on_account_im_rate_not_on_im_over_equity(sim, engine_thread):
    engine = engine_thread.engine
    # 0.1 BTC at 60 000 = 6000 USD of equity, 3000 of margin (haircut 50 %); then an ETH long
    # holding 10 798.92 USDT of initial margin (32.72 ETH at 3300.33, 10x).
    sim.collateral("BTC", "60000", "0.5")
    sim.transfer("0.1", coin="BTC")
    gateway = make_sim_gateway(sim)
    gateway.place_order(
        symbol="ETHUSDT",
        side=Side.BUY,
        qty=Decimal("32.72"),
        order_link_id="t-eth",
        reference_price=Decimal("3300"),
    )
    rate, over_equity = wallet_figures(sim)
    assert Decimal("80") <= rate < Decimal("100") and over_equity < Decimal("80")
    wait_until(lambda: engine.account.im_pct == rate, what="the engine's IM % = accountIMRate")

    move_price(sim, engine, "BTCUSDT", "95000.00")
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    wait_until(lambda: skipped("im_above_warn"), what="the warn skip")
    assert engine.snapshot.im_pct == rate and entry_orders(sim) == []

    # The coin stops counting as margin: accountIMRate passes 100 %, IM / equity stays at 67 %.
    sim.collateral("BTC", "60000", "0")
    rate, over_equity = wallet_figures(sim)
    assert rate >= Decimal("100") and over_equity < Decimal("80")
    wait_until(lambda: engine.account.im_pct == rate, what="the engine's IM % from the wallet stream")
    sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
    wait_until(lambda: skipped("im_above_block"), what="the block skip")
    assert engine.snapshot.im_pct == rate and entry_orders(sim) == []


def test_the_rest_reconcile_reads_account_im_rate_too(sim, engine_thread):
    from trading.engine_runner import account_from_exchange

    sim.collateral("USDC", "1", "0.8")
    sim.transfer("5000", coin="USDC")  # 5000 of equity, 4000 of margin
    gateway = make_sim_gateway(sim)
    gateway.place_order(
        symbol="ETHUSDT",
        side=Side.BUY,
        qty=Decimal("35.00"),
        order_link_id="t-eth",
        reference_price=Decimal("3300"),
    )
    rate, over_equity = wallet_figures(sim)

    view = account_from_exchange(gateway)

    assert view.im_pct == rate and rate > over_equity
    assert view.equity == Decimal(sim.state()["wallet"]["totalEquity"])
