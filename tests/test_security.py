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


# -- refused, journaled, nothing changed ---------------------------------------------------------
# Every refusal below is journaled in core.AccessRefusal (core.access) and leaves the switches
# (TradingState) and the journal of decisions as they were.


def _nothing_changed() -> None:
    from core.models import TradingState
    from trading.models import Decision

    state = TradingState.objects.filter(pk=1).first()
    assert state is None or not (state.panic_locked or state.halted)
    assert not Decision.objects.exists()


def _refusals(**match) -> list:
    from core.models import AccessRefusal

    return list(
        AccessRefusal.objects.filter(**match).values("channel", "reason", "source", "target", "count")
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/panic"), ("post", "/api/trading/halt"), ("get", "/api/state"), ("post", "/panic/button")],
)
def test_a_client_outside_the_networks_is_refused_and_journaled_even_with_the_token(
    client, api_token, method, path
):
    response = getattr(client, method)(
        path, {"reason": "outsider"}, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {api_token}"
    )
    assert response.status_code == 403
    [refusal] = _refusals(reason="client_network")
    assert refusal == {
        "channel": "http",
        "reason": "client_network",
        "source": "203.0.113.9",
        "target": path,
        "count": 1,
    }
    _nothing_changed()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    ["HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED", "HTTP_CLIENT_IP", "HTTP_TRUE_CLIENT_IP"],
)
def test_a_spoofed_forwarding_header_does_not_make_an_outsider_local(client, api_token, header):
    value = "for=127.0.0.1" if header == "HTTP_FORWARDED" else "127.0.0.1"
    response = client.post(
        "/panic", REMOTE_ADDR="198.51.100.7", HTTP_AUTHORIZATION=f"Bearer {api_token}", **{header: value}
    )
    assert response.status_code == 403
    assert [r["source"] for r in _refusals(reason="client_network")] == ["198.51.100.7"]
    _nothing_changed()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer", "Basic dXNlcjpwYXNz", "Bearer test-control-token extra", "Token "],
)
def test_a_missing_or_wrong_token_halts_nothing_and_is_journaled(client, authorization, redis_db):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    for path in ("/api/trading/halt", "/panic"):
        assert client.post(path, {"reason": "x"}, **headers).status_code in (401, 403)
    refusals = _refusals(channel="http")
    assert {r["reason"] for r in refusals} == {"api_token"}
    assert sum(r["count"] for r in refusals) == 1, "one row; the second refusal folds into it"
    assert refusals[0]["target"] == "POST /api/trading/halt" and refusals[0]["source"] == "127.0.0.1"
    _nothing_changed()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/panic/button", {}),
        ("/panic/reset/button", {}),
        ("/api/trading/halt", {"reason": "forged"}),
        ("/admin/core/alertsettings/1/change/", {"trades": "on", "rate_limit_count": "1"}),
        ("/admin/logout/", {}),
    ],
)
def test_a_form_post_without_its_csrf_token_is_refused_and_journaled(admin_user, path, data, redis_db):
    from django.test import Client

    from core.models import AlertSettings

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.post(path, data).status_code == 403
    [refusal] = _refusals(channel="http")
    assert refusal["reason"] in ("csrf", "api_permission") and refusal["target"] == f"POST {path}"
    _nothing_changed()
    assert AlertSettings.load().rate_limit_count == 3, "the settings form changed nothing"
    assert browser.get("/admin/").status_code == 200, "still logged in: the logout was refused too"


@pytest.mark.django_db
def test_a_logged_in_user_who_is_not_staff_is_journaled_and_halts_nothing(client, django_user_model):
    user = django_user_model.objects.create_user("viewer2", password="pw-viewer-123")
    client.force_login(user)
    assert client.post("/api/trading/halt", {"reason": "x"}).status_code == 403
    assert [r["reason"] for r in _refusals()] == ["api_permission"]
    _nothing_changed()


def _from_address(base_url: str, source: str, method: str, path: str, headers: dict) -> int:
    """One HTTP request to the live server, sent from the local address ``source``."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body="{}", headers={"Content-Type": "application/json", **headers})
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.integration
def test_a_real_server_refuses_a_second_loopback_address_and_a_spoofed_forward(tmp_path, settings, redis_db):
    """daphne as `make run` starts it, asked from 127.0.0.2 (Linux answers on all of 127/8):
    refused with the token and with X-Forwarded-For naming 127.0.0.1; journaled; the panic
    lock untouched. The same request from 127.0.0.1 gets in."""
    from tests.support.browser import manage, running_web

    token = {"Authorization": "Bearer browser-test-token"}
    with running_web(tmp_path, settings.REDIS_URL) as (base_url, env):
        assert _from_address(base_url, "127.0.0.2", "POST", "/panic", token) == 403
        assert (
            _from_address(base_url, "127.0.0.2", "POST", "/panic", {**token, "X-Forwarded-For": "127.0.0.1"})
            == 403
        )
        assert (
            _from_address(base_url, "127.0.0.2", "GET", "/api/state", {"X-Real-IP": "127.0.0.1", **token})
            == 403
        )
        assert _from_address(base_url, "127.0.0.1", "GET", "/api/state", token) == 200
        journal = manage(
            env,
            "shell",
            "-c",
            "from core.models import AccessRefusal, TradingState; "
            "print([(r.reason, r.source, r.target, r.count) for r in AccessRefusal.objects.all()]); "
            "print(TradingState.current().panic_locked)",
        ).splitlines()
    assert journal[-2] == "[('client_network', '127.0.0.2', '/panic', 1)]"
    assert journal[-1] == "False"
