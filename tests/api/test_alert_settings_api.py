"""AlertSettings through the REST API (`/api/settings/alerts`) and the admin: the model's
validation applies, the row exists once."""

from __future__ import annotations

import json

import pytest

from core.models import AlertSettings

pytestmark = pytest.mark.django_db


def patch(client, token, body):
    return client.patch(
        "/api/settings/alerts",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_the_alert_settings_are_read_and_patched_with_the_models_rules(client, api_token):
    response = client.get("/api/settings/alerts", HTTP_AUTHORIZATION=f"Bearer {api_token}")
    assert response.status_code == 200
    body = response.json()
    assert body["trades"] is True and body["trade_digest_minutes"] == 0
    assert (body["rate_limit_count"], body["rate_limit_window_s"], body["feed_silent_seconds"]) == (
        3,
        300,
        60,
    )

    refused = patch(client, api_token, {"rate_limit_count": 0, "rate_limit_window_s": 5})
    assert refused.status_code == 400 and set(refused.json()) == {"rate_limit_count", "rate_limit_window_s"}
    assert patch(client, api_token, {"trades": False, "trade_digest_minutes": 15}).status_code == 200

    settings = AlertSettings.load()
    assert (settings.trades, settings.trade_digest_minutes, settings.rate_limit_count) == (False, 15, 3)
    assert AlertSettings.objects.count() == 1


def test_the_api_needs_the_token(client):
    assert client.get("/api/settings/alerts").status_code == 401


def test_the_admin_opens_the_one_row(admin_client):
    response = admin_client.get("/admin/core/alertsettings/", follow=True)
    assert response.status_code == 200
    assert (
        "Send to Telegram" in response.content.decode()
        and "trade_digest_minutes" in response.content.decode()
    )
