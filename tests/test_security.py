"""Who may reach the panel: client networks, the API token, logins."""

from __future__ import annotations

import pytest

from controlpanel.config import client_networks


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_clients_are_served(client, redis_db, address):
    assert client.get("/api/health", REMOTE_ADDR=address).status_code in (200, 503)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/admin/", "/api/health", "/api/schema/", "/admin/login/"])
@pytest.mark.parametrize("address", ["192.168.1.20", "10.0.0.5", "2001:db8::1", "", "garbage"])
def test_other_clients_are_refused_everywhere_by_default(client, path, address):
    response = client.get(path, REMOTE_ADDR=address)
    assert response.status_code == 403
    assert b"ALLOWED_CLIENT_NETWORKS" in response.content


@pytest.mark.django_db
def test_a_configured_network_is_served(client, settings, redis_db):
    settings.ALLOWED_CLIENT_NETWORKS = client_networks("127.0.0.1/32,192.168.1.0/24")
    assert client.get("/api/health", REMOTE_ADDR="192.168.1.20").status_code != 403
    assert client.get("/api/health", REMOTE_ADDR="192.168.2.20").status_code == 403


@pytest.mark.django_db
def test_the_api_needs_the_token_or_a_staff_login(client, admin_client, api_token):
    assert client.get("/api/schema/").status_code == 401
    assert client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer").status_code == 401
    assert client.get("/api/schema/", HTTP_AUTHORIZATION=f"Bearer {api_token}").status_code == 200
    assert client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {api_token}").status_code == 200
    assert admin_client.get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_a_logged_in_user_who_is_not_staff_gets_no_api(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-123")
    client.force_login(user)
    assert client.get("/api/schema/").status_code == 403


@pytest.mark.django_db
def test_an_empty_configured_token_never_matches(client, settings):
    settings.CONTROL_API_TOKEN = ""
    assert client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer x").status_code == 401


@pytest.mark.django_db
def test_the_dashboard_needs_a_login_and_then_says_what_runs(client, admin_client, redis_db):
    from core.heartbeat import heartbeat_write

    response = client.get("/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    heartbeat_write(process="engine")
    page = admin_client.get("/").content.decode()
    assert "engine" in page and "running" in page and "sim" in page
