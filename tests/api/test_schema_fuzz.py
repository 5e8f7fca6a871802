"""Schemathesis over the API's own OpenAPI schema (drf-spectacular, `/api/schema/`), with the token:
whatever it sends within and around the schema, no operation answers 5xx, and an answer 4xx
changed nothing (no row written, no switch moved).

In process, through Django's WSGI handler (schemathesis's WSGI transport); deterministic
(derandomized, so every run sends the same requests) and short: at most `EXAMPLES` requests per
operation. The panic endpoints are fuzzed too, on purpose: a panic here runs against a test
database and the reset simulator (flat, nothing to close), which is harmless, and the fuzz is
how we know a bad body to `POST /panic` is a 400 that locks nothing. The one documented 5xx of
the API, 503 from `/api/health` while the worker processes are not running (none run here), is
its answer, not a server error, and is allowed for that operation only.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, Phase, settings

schemathesis = pytest.importorskip("schemathesis")

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from drf_spectacular.generators import SchemaGenerator  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# 20 keeps the run under a minute; SCHEMA_FUZZ_EXAMPLES=200 for a deeper look by hand.
EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "20"))
TOKEN = "test-control-token"  # controlpanel.settings_test
# Documented 5xx answers: (method, path) -> statuses that are the operation's meaning, not a fault.
DOCUMENTED_5XX = {("GET", "/api/health"): {503}}
# path parameter -> {operation path: the seeded row's key} (see `venue`).
PATH_ROWS: dict[str, dict[str, object]] = {}


def _schema() -> dict:
    """The schema `/api/schema/` serves, as JSON (lazy strings and ordered dicts made plain)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(json.dumps(generated, default=str))


schema = schemathesis.openapi.from_dict(_schema())
APP = WSGIHandler()


@pytest.fixture
def venue(settings, sim, redis_db):
    """What a request may reach: the reset simulator (flat, 10 000 USDT), an empty Redis db, and
    one row of each kind a path names (a coin, an allowlist entry, a decision), so that the
    fuzz edits real rows instead of meeting 404 every time."""
    from decimal import Decimal

    from portfolio.models import AllowlistEntry
    from trading.models import Coin, Decision

    Coin.objects.create(
        symbol="BTCUSDT",
        long_offset_pct=Decimal("1"),
        short_offset_pct=Decimal("1"),
        min_liquidation_usdt=Decimal("1000"),
        order_size_usdt=Decimal("100"),
        leverage=10,
        take_profit_pct=Decimal("2"),
        stop_loss_pct=Decimal("1"),
    )
    AllowlistEntry.objects.create(symbol="ETHUSDT")
    decision = Decision.objects.create(
        strategy="wl", symbol="BTCUSDT", action="open_long", outcome="skipped", reason_code="cooldown"
    )
    PATH_ROWS.update(symbol={"/api/coins/{symbol}": "BTCUSDT", "/api/allowlist/{symbol}": "ETHUSDT"})
    PATH_ROWS.update(id={"/api/decisions/{id}": decision.pk})
    settings.EXCHANGE_MODE = "sim"
    settings.SIM_BASE_URL = sim.base_url
    settings.SIM_API_KEY = sim.api_key
    settings.SIM_API_SECRET = sim.api_secret
    settings.PANIC_FLATTEN_ROUNDS = 2
    settings.PANIC_FLATTEN_PAUSE_S = 0.0
    settings.TELEGRAM_BOT_TOKEN = ""
    return sim


def _everything_a_request_may_change() -> list:
    """The rows the API writes: switches, settings, coins, allowlist, the journal."""
    from core.models import AlertSettings, TradingState
    from portfolio.models import AllowlistEntry, PortfolioSettings
    from risk.models import RiskSettings
    from trading.models import Coin, Decision

    models = (TradingState, AlertSettings, RiskSettings, PortfolioSettings, Coin, AllowlistEntry, Decision)
    return [list(model.objects.order_by("pk").values()) for model in models]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its curl line as found
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(case, venue):
    for name, rows in PATH_ROWS.items():
        if case.path in rows and case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = rows[case.path]
    before = _everything_a_request_may_change()
    response = case.call(
        app=APP,
        headers={"Authorization": f"Bearer {TOKEN}"},
        environ_overrides={"REMOTE_ADDR": "127.0.0.1"},  # werkzeug's test client sends none
    )
    # Through the client-network check and the token: the fuzz reaches the views.
    assert response.status_code not in (401, 403), (response.status_code, response.text[:200])
    if 400 <= response.status_code < 500:
        # Refused input is refused whole: no row written, no switch moved.
        assert _everything_a_request_may_change() == before, (case.method, case.path, response.status_code)
    documented = DOCUMENTED_5XX.get((case.method.upper(), case.path), set())
    if response.status_code in documented:
        return
    case.validate_response(response, checks=[not_a_server_error])
