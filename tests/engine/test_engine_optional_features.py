"""Optional exchange features never stop the engine: Bybit's Disconnect-Cancel-All (DCP),
which Bybit enables only for some accounts, is set when the account has it and is
journaled and alerted once when it does not, and trading starts either way."""

from __future__ import annotations

import pytest

from core.alerts import recent_alerts
from tests.support.engine import entry_orders, move_price, start_listening_engine
from tests.support.waiting import wait_until
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _private_subscriptions(sim) -> dict[str, int]:
    counts = wait_until(
        lambda: (c := sim.state()["subscriptions"]).get("order") and c, what="the private stream's topics"
    )
    return counts


def _dcp_alerts() -> list[dict]:
    return [alert for alert in recent_alerts(limit=100) if alert["kind"] == "dcp_refused"]


def test_on_an_account_with_dcp_the_window_is_set_and_dcp_future_subscribed(sim, btc_coin, redis_db):
    sim.configure(dcp_enabled=True)
    thread = start_listening_engine(sim, redis_db, gateway_options={"dcp_window_s": 15})
    try:
        assert sim.state()["dcp"]["window"] == 15
        wait_until(lambda: sim.state()["dcp"]["subscribers"] == 1, what="the dcp.future subscription")
        assert sim.state()["dcp"]["armed"] is True
        assert not Decision.objects.filter(reason_code="dcp_refused").exists()
        assert _dcp_alerts() == []
    finally:
        thread.stop()


def test_on_an_account_without_dcp_the_engine_starts_trades_and_says_so_once(sim, btc_coin, redis_db):
    assert sim.state()["settings"]["dcpEnabled"] is False  # a retail account
    thread = start_listening_engine(sim, redis_db, gateway_options={"dcp_window_s": 15})
    try:
        subscriptions = _private_subscriptions(sim)
        assert "dcp.future" not in subscriptions and sim.state()["dcp"]["subscribers"] == 0
        move_price(sim, thread.engine, "BTCUSDT", "95000.00")
        sim.liquidation("BTCUSDT", "SELL", "95000", "0.5")
        [order] = wait_until(lambda: entry_orders(sim), what="the entry order")
        assert order["orderStatus"] == "Filled"
        wait_until(lambda: Decision.objects.filter(outcome="taken").exists(), what="the entry's row")
    finally:
        thread.stop()
    [refusal] = Decision.objects.filter(reason_code="dcp_refused")
    assert (refusal.strategy, refusal.action, refusal.outcome) == ("wl", "dcp_window", "failed")
    assert refusal.details["error_code"] == 10005 and refusal.details["window_s"] == 15
    [alert] = _dcp_alerts()
    assert "DCP window" in alert["text"] and "10005" in alert["text"]

    # A restart journals the refusal again (the record of each start) but does not alert again.
    thread = start_listening_engine(sim, redis_db, gateway_options={"dcp_window_s": 15})
    thread.stop()
    assert Decision.objects.filter(reason_code="dcp_refused").count() == 2
    assert len(_dcp_alerts()) == 1
