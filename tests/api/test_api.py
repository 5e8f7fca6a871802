"""The REST API: the same validation as the admin and importers, token auth, the switches."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.models import TradingState
from portfolio.models import AllowlistEntry, PortfolioSettings
from risk.models import RiskSettings
from trading.models import Coin, Decision

pytestmark = pytest.mark.django_db

COIN = {
    "symbol": "BTCUSDT",
    "enabled": True,
    "long_offset_pct": "0.5",
    "short_offset_pct": "0.7",
    "min_liquidation_usdt": "5000",
    "order_size_usdt": "10",
    "leverage": 10,
    "take_profit_pct": "1",
    "stop_loss_pct": "2",
}


@pytest.fixture
def api(client, api_token):
    """A test client that sends the owner's bearer token and JSON."""

    class Api:
        def call(self, method, path, body=None):
            return getattr(client, method)(
                path,
                data=json.dumps(body) if body is not None else None,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {api_token}",
            )

        def get(self, path):
            return self.call("get", path)

        def post(self, path, body=None):
            return self.call("post", path, body)

        def patch(self, path, body):
            return self.call("patch", path, body)

        def put(self, path, body):
            return self.call("put", path, body)

        def delete(self, path):
            return self.call("delete", path)

    return Api()


def test_a_coin_is_created_read_updated_and_deleted_with_decimals_as_strings(api):
    created = api.post("/api/coins", COIN)
    assert created.status_code == 201, created.json()
    assert created.json()["long_offset_pct"] == "0.5000"
    assert api.get("/api/coins/BTCUSDT").json()["leverage"] == 10
    assert api.patch("/api/coins/BTCUSDT", {"enabled": False}).status_code == 200
    assert Coin.objects.get().enabled is False
    assert [c["symbol"] for c in api.get("/api/coins").json()] == ["BTCUSDT"]
    assert api.delete("/api/coins/BTCUSDT").status_code == 204
    assert not Coin.objects.exists()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"symbol": "BTCUSD"}, "symbol", "not a USDT perpetual"),
        ({"leverage": 101}, "leverage", "less than or equal to 100"),
        ({"stop_loss_pct": "10"}, "stop_loss_pct", "beyond liquidation"),
        ({"order_size_pct_equity": "5"}, "order_size_usdt", "exactly one"),
        ({"long_offset_pct": "abc"}, "long_offset_pct", "A valid number is required"),
    ],
)
def test_a_bad_coin_gets_400_with_the_models_message_and_nothing_is_saved(api, change, field, words):
    response = api.post("/api/coins", {**COIN, **change})
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert not Coin.objects.exists()


def test_a_bad_patch_changes_nothing(api):
    api.post("/api/coins", COIN)
    response = api.patch("/api/coins/BTCUSDT", {"leverage": 50})  # SL 2 % is beyond liquidation at 50x
    assert response.status_code == 400 and "beyond liquidation" in " ".join(response.json()["stop_loss_pct"])
    assert Coin.objects.get().leverage == 10


def test_risk_settings_validate_across_fields(api):
    assert api.get("/api/settings/risk").json()["daily_target_pct"] == "10.0000"
    response = api.patch("/api/settings/risk", {"im_warn_pct": "120"})
    assert response.status_code == 400 and "must be below IM reduce" in " ".join(
        response.json()["im_warn_pct"]
    )
    assert RiskSettings.load().im_warn_pct == Decimal("80")
    assert api.patch("/api/settings/risk", {"daily_stop_pct": "3.5"}).status_code == 200
    assert RiskSettings.load().daily_stop_pct == Decimal("3.5")
    assert RiskSettings.objects.count() == 1


def test_portfolio_settings_and_allowlist(api):
    assert api.patch("/api/settings/portfolio", {"enabled": True, "budget_usdt": "250"}).status_code == 200
    assert PortfolioSettings.load().budget_usdt == Decimal("250")
    assert api.post("/api/allowlist", {"symbol": "ETHUSDT", "note": "momentum"}).status_code == 201
    refused = api.post("/api/allowlist", {"symbol": "eth"})
    assert refused.status_code == 400 and "upper case" in " ".join(refused.json()["symbol"])
    assert list(AllowlistEntry.objects.values_list("symbol", flat=True)) == ["ETHUSDT"]


def test_halt_and_resume_through_the_api_are_journaled(api, redis_db):
    halted = api.post("/api/trading/halt", {"reason": "going to sleep"})
    assert (
        halted.status_code == 200 and halted.json()["halted"] is True and halted.json()["may_trade"] is False
    )
    assert TradingState.load().halted_by == "api:api-token"
    assert api.post("/api/trading/halt", {}).status_code == 200  # idempotent
    state = api.get("/api/state").json()
    assert state["halted"] is True and "engine" in state
    assert api.post("/api/trading/resume").json()["may_trade"] is True
    assert list(Decision.objects.order_by("id").values_list("action", flat=True)) == [
        "halt",
        "halt",
        "resume",
    ]


def test_the_journal_reads_newest_first_with_filters(api):
    for symbol, outcome in (("BTCUSDT", "taken"), ("ETHUSDT", "skipped"), ("BTCUSDT", "skipped")):
        Decision.objects.create(
            strategy="wl",
            symbol=symbol,
            action="open_long",
            outcome=outcome,
            reason_code="entered" if outcome == "taken" else "offset_not_met",
        )
    rows = api.get("/api/decisions?symbol=BTCUSDT").json()
    assert [(r["symbol"], r["outcome"]) for r in rows] == [("BTCUSDT", "skipped"), ("BTCUSDT", "taken")]
    assert len(api.get("/api/decisions?outcome=skipped").json()) == 2
    assert api.post("/api/decisions", {}).status_code == 405


def test_one_journal_row_is_read_by_its_id(api):
    row = Decision.objects.create(
        strategy="wl", symbol="BTCUSDT", action="open_long", outcome="skipped", reason_code="cooldown"
    )
    answer = api.get(f"/api/decisions/{row.pk}")
    assert answer.status_code == 200 and answer.json()["reason_code"] == "cooldown"
    assert api.get(f"/api/decisions/{row.pk + 1}").status_code == 404


def test_every_endpoint_needs_the_token(client):
    for path in (
        "/api/coins",
        "/api/state",
        "/api/settings/risk",
        "/api/allowlist",
        "/api/decisions",
        "/api/daily-pnl",
        "/api/daily-pnl.csv",
        "/api/account",
        "/api/positions",
        "/api/orders",
        "/api/liquidations",
    ):
        assert client.get(path).status_code == 401, path
    assert client.post("/api/trading/halt", {}, content_type="application/json").status_code == 401


def test_the_openapi_schema_describes_the_api(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path in (
        "/api/coins",
        "/api/coins/{symbol}",
        "/api/state",
        "/api/trading/halt",
        "/api/settings/risk",
        "/api/allowlist",
        "/api/decisions",
        "/api/health",
        "/api/account",
        "/api/positions",
        "/api/orders",
        "/api/daily-pnl.csv",
        "/api/liquidations",
    ):
        assert path in paths, sorted(paths)


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "ControlToken" in (tmp_path / "schema.yml").read_text()


def test_the_favicon_is_an_empty_answer_not_a_404_in_the_log(client):
    assert client.get("/favicon.ico").status_code == 204
