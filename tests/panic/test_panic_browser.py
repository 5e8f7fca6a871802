"""The status page's panic and reset buttons in headless Chromium, served by daphne, on the simulator."""

from __future__ import annotations

import pytest

from tests.support.browser import dashboard_page, running_web
from tests.support.sim import open_orders_on_exchange

pytestmark = [pytest.mark.browser, pytest.mark.integration]


OWNER = (
    "from django.contrib.auth.models import User; User.objects.create_superuser('owner', '', 'pw-owner-1')"
)


def test_the_panic_button_flattens_the_account_and_the_reset_button_lifts_the_lock(
    tmp_path, redis_db, settings, sim, open_book, chromium
):
    with running_web(
        tmp_path,
        settings.REDIS_URL,
        setup=(OWNER,),
        SIM_BASE_URL=sim.base_url,
        SIM_API_KEY=sim.api_key,
        SIM_API_SECRET=sim.api_secret,
    ) as (base_url, _env):
        page, script_errors = dashboard_page(chromium, base_url)
        assert page.inner_text("#panic-state") == "Not locked."
        assert not page.is_visible("#panic-receipt")  # no panic yet

        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        page.fill("#panic-form input[name=reason]", "browser drill")
        page.click("#panic-button")
        page.wait_for_selector("#messages")

        assert dialogs and dialogs[0].startswith("PANIC:")  # the button asks first
        assert "account FLAT, verified on the exchange" in page.inner_text("#messages")
        assert page.inner_text("#panic-state").startswith("LOCKED since")
        assert "browser drill" in page.inner_text("#panic-state")
        assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
        receipt = page.inner_text("#panic-receipt-summary")  # the receipt, from the journal
        assert "UTC by dashboard:owner (browser drill) · FLAT, verified on the exchange · " in receipt
        assert "closed BTCUSDT, ETHUSDT · left no position" in receipt and " orders cancelled" in receipt
        assert "lock " in page.inner_text("#panic-receipt-timings")  # the phases, in ms
        page.click("#panic-receipt-closes-box summary")
        closes = page.inner_text("#panic-receipt-closes")
        assert "ETHUSDT Buy 0.50 @ " in closes and "BTCUSDT Sell 0.010 @ " in closes
        page.screenshot(path=str(tmp_path / "panic.png"))

        page.click("#panic-reset-button")
        page.wait_for_selector("#messages >> text=Panic lock lifted")
        assert page.inner_text("#panic-state") == "Not locked."
        assert page.locator("#panic-reset-button").count() == 0
        assert "browser drill" in page.inner_text("#panic-receipt-summary")  # the last receipt stays
        assert script_errors == []
