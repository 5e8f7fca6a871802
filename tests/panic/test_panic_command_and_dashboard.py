"""`manage.py panic` and the status page's panic and reset buttons (Django's test client)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from core.models import TradingState
from tests.support.sim import open_orders_on_exchange
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_the_command_panics_and_resets(sim, panic_settings, open_book, capsys):
    call_command("panic", "--reason", "from the shell")
    out = capsys.readouterr().out
    assert "account FLAT" in out and "BTCUSDT, ETHUSDT" in out
    assert "  ETHUSDT Buy 0.50 @ " in out and "  BTCUSDT Sell 0.010 @ " in out  # the receipt
    assert "1 round; lock " in out and " ms · total " in out
    state = TradingState.load()
    assert state.panic_locked and state.panic_reason == "from the shell"
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    assert Decision.objects.get(action="panic").details["by"].startswith("command")

    call_command("panic", "--reset")
    assert "Panic lock lifted" in capsys.readouterr().out
    assert not TradingState.load().panic_locked
    call_command("panic", "--reset")
    assert "was not on" in capsys.readouterr().out


def test_the_command_fails_loudly_when_not_flat_and_when_the_reset_is_refused(sim, panic_settings, open_book):
    sim.fault("/v5/order/create-batch", retCode=10001, count=3)
    with pytest.raises(CommandError, match="NOT FLAT"):
        call_command("panic")
    with pytest.raises(
        CommandError, match="Reset refused: The account is not flat: positions BTCUSDT, ETHUSDT"
    ):
        call_command("panic", "--reset")
    assert TradingState.load().panic_locked


def test_the_panic_button_flattens_and_the_reset_button_unlocks(admin_client, sim, panic_settings, open_book):
    page = admin_client.get("/").content.decode()
    assert 'id="panic-button"' in page and "Not locked." in page and 'id="panic-reset-button"' not in page

    response = admin_client.post("/panic/button", {"reason": "button drill"}, follow=True)
    page = response.content.decode()
    assert response.redirect_chain == [("/", 302)]
    assert "account FLAT" in page and "LOCKED" in page and "button drill" in page
    assert 'id="panic-reset-button"' in page
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    assert Decision.objects.get(action="panic").details["by"] == "dashboard:admin"

    page = admin_client.post("/panic/reset/button", follow=True).content.decode()
    assert "Panic lock lifted" in page and "Not locked." in page
    assert not TradingState.load().panic_locked


def test_the_reset_button_says_why_it_was_refused(admin_client, sim, panic_settings, open_book):
    sim.fault("/v5/order/create-batch", retCode=10001, count=3)
    page = admin_client.post("/panic/button", follow=True).content.decode()
    assert "NOT FLAT" in page
    page = admin_client.post("/panic/reset/button", follow=True).content.decode()
    assert "Panic reset refused: The account is not flat" in page and "LOCKED" in page
    assert TradingState.load().panic_locked


def test_the_buttons_need_post_a_csrf_token_and_a_staff_login(
    client, django_user_model, admin_user, sim, panic_settings
):
    from django.test import Client

    assert client.post("/panic/button").status_code == 302  # to the login page
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123")
    client.force_login(viewer)
    assert client.post("/panic/button").status_code == 403
    assert 'id="panic-button"' not in client.get("/").content.decode()

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.get("/panic/button").status_code == 405
    assert strict.post("/panic/button").status_code == 403  # no CSRF token
    assert not TradingState.objects.filter(panic_locked=True).exists()
