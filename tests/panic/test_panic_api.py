"""GET/POST /panic and POST /panic/reset: statuses, idempotency, who may call them."""

from __future__ import annotations

import pytest

from controlpanel.config import client_networks
from core.models import TradingState
from tests.support.sim import open_orders_on_exchange
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def bearer(api_token):
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token}"}


def test_post_panic_flattens_and_both_posts_are_idempotent(client, bearer, sim, panic_settings, open_book):
    assert client.get("/panic", **bearer).json()["panic_locked"] is False

    first = client.post("/panic", {"reason": "api drill"}, content_type="application/json", **bearer)
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["status"] == "flat" and body["flat"] and body["verified"] and body["panic_locked"]
    assert body["closed"] == ["BTCUSDT", "ETHUSDT"] and body["cancelled_orders"] == 5
    assert body["by"] == "api:api-token" and body["reason"] == "api drill" and body["newly_locked"]
    assert sim.state()["positions"] == [] and open_orders_on_exchange(sim) == []
    # The receipt: each close with the exchange's price and PnL, each cancelled order, the timings.
    assert [(c["symbol"], c["side"], c["qty"]) for c in body["closes"]] == [
        ("ETHUSDT", "Buy", "0.50"),
        ("BTCUSDT", "Sell", "0.010"),
    ]
    assert all(c["avg_price"] and c["realised_pnl"] for c in body["closes"])
    assert len(body["cancelled"]) == 5 and body["rounds"] == 1 and body["rate_limited"] == 0
    assert set(body["timings_ms"]) == {"lock", "cancel", "closes", "verification", "total"}

    again = client.post("/panic", **bearer)  # no body at all
    assert again.status_code == 200
    assert again.json()["locked_since"] == body["locked_since"] and not again.json()["newly_locked"]
    assert again.json()["closed"] == []

    state = client.get("/panic", **bearer).json()
    assert state["panic_locked"] and state["panic_reason"] == "api drill" and not state["may_trade"]
    assert state["running_run_key"] is None

    reset = client.post("/panic/reset", **bearer)
    assert reset.status_code == 200 and reset.json()["was_locked"] and not reset.json()["panic_locked"]
    reset_again = client.post("/panic/reset", **bearer)
    assert reset_again.status_code == 200 and reset_again.json()["was_locked"] is False
    assert not TradingState.load().panic_locked
    assert Decision.objects.filter(action="reset", outcome="taken").count() == 1


def test_a_panic_that_cannot_get_flat_answers_503_and_the_reset_409(
    client, bearer, sim, panic_settings, open_book
):
    sim.fault("/v5/order/create-batch", retCode=10001, count=3)
    response = client.post("/panic", **bearer)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_flat" and body["panic_locked"]
    assert body["remaining_positions"] == ["BTCUSDT", "ETHUSDT"] and body["errors"]

    refused = client.post("/panic/reset", **bearer)
    assert refused.status_code == 409
    assert refused.json()["reason_code"] == "not_flat"
    assert refused.json()["remaining_positions"] == ["BTCUSDT", "ETHUSDT"]
    assert "BTCUSDT" in refused.json()["detail"]
    assert TradingState.load().panic_locked


def test_an_overlong_reason_is_refused_before_anything_happens(client, bearer, panic_settings):
    response = client.post("/panic", {"reason": "x" * 201}, content_type="application/json", **bearer)
    assert response.status_code == 400 and "reason" in response.json()
    assert not TradingState.objects.filter(panic_locked=True).exists()


@pytest.mark.parametrize("path", ["/panic", "/panic/reset"])
def test_a_wrong_token_or_none_gets_401_and_changes_nothing(client, sim, panic_settings, open_book, path):
    assert client.post(path, HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.post(path).status_code == 401
    assert client.get("/panic", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert len(sim.state()["positions"]) == 2
    assert not TradingState.objects.filter(panic_locked=True).exists()


@pytest.mark.parametrize("address", ["192.168.1.20", "10.0.0.5", "2001:db8::1"])
@pytest.mark.parametrize("path", ["/panic", "/panic/reset", "/panic/button"])
def test_another_network_gets_403_even_with_the_token(client, bearer, sim, panic_settings, address, path):
    response = client.post(path, REMOTE_ADDR=address, **bearer)
    assert response.status_code == 403 and b"ALLOWED_CLIENT_NETWORKS" in response.content
    assert not TradingState.objects.filter(panic_locked=True).exists()


def test_a_configured_network_may_panic(client, bearer, settings, sim, panic_settings):
    settings.ALLOWED_CLIENT_NETWORKS = client_networks("127.0.0.1/32,192.168.1.0/24")
    assert client.post("/panic", REMOTE_ADDR="192.168.1.20", **bearer).status_code == 200


def test_a_staff_session_needs_the_csrf_token(sim, panic_settings, admin_user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.post("/panic").status_code == 403  # no CSRF token
    assert not TradingState.objects.filter(panic_locked=True).exists()

    browser.get("/")  # the status page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post("/panic", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200 and response.json()["by"] == "api:admin"


def test_a_logged_in_user_who_is_not_staff_may_not_panic(client, django_user_model, sim, panic_settings):
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-viewer-123"))
    assert client.post("/panic").status_code == 403
    assert client.post("/panic/reset").status_code == 403
    assert not TradingState.objects.filter(panic_locked=True).exists()


def test_the_schema_documents_the_panic_endpoints(client, bearer):
    schema = client.get("/api/schema/", **bearer).content.decode()
    assert "/panic/reset" in schema and "PanicResult" in schema and "'409'" in schema
