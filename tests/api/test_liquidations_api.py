"""GET /api/liquidations: the engine's recent liquidations as it published them to Redis, newest
first, with what it made of each; the same token and network rules as the rest of /api."""

from __future__ import annotations

import json

import pytest

from core import keys
from trading.engine import LiquidationEngine
from trading.engine_runner import EngineRunner
from trading.events import LiquidationEvent
from trading.rules.decision import Skip, SkipReason

pytestmark = pytest.mark.django_db

ROW = {
    "at_ms": 1_764_849_600_120,
    "event_ms": 1_764_849_600_000,
    "event_age_ms": 120,
    "symbol": "BTCUSDT",
    "side": "long",
    "price": "95000",
    "qty": "0.5",
    "notional": "47500",
    "source": "binance",
    "bybit_price": "95010.5",
    "vwap": "96900",
    "result": "entry",
}


@pytest.fixture
def bearer(api_token):
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token}"}


def publish(redis_db, *rows):
    redis_db.rpush(keys.ENGINE_LIQUIDATIONS, *(json.dumps(row) for row in rows))


def test_newest_first_with_the_outcome_and_the_skip_reason(client, bearer, redis_db):
    stale = {**ROW, "at_ms": ROW["at_ms"] + 5_000, "event_age_ms": 4_100, "result": "stale_event"}
    stale |= {"bybit_price": None, "vwap": None, "symbol": "ETHUSDT", "side": "short"}
    publish(redis_db, ROW, "not json", stale)
    rows = client.get("/api/liquidations", **bearer).json()
    assert rows == [
        {**{k: v for k, v in stale.items() if k != "result"}, "outcome": "skipped", "reason": "stale_event"},
        {**{k: v for k, v in ROW.items() if k != "result"}, "outcome": "entry", "reason": ""},
    ]
    only_btc = client.get("/api/liquidations?symbol=btcusdt", **bearer).json()
    assert [row["symbol"] for row in only_btc] == ["BTCUSDT"]


def test_what_the_engine_publishes_reads_back_through_the_api(client, bearer, redis_db):
    """The runner's own rows (trading.engine_runner.liquidation_row), not a hand-made copy."""
    from trading.engine_runner import _liquidations_store

    engine = LiquidationEngine(gateway=None, loop=None, order_threads=1)
    runner = EngineRunner(gateway=None, endpoints=None)
    runner.engine = engine
    event = LiquidationEvent("SOLUSDT", "short", *_decimals("181.5", "10", "1815"), 1_000, "sim", "x")
    engine.recent_liquidations.append((3_500, event, Skip(SkipReason.STALE_EVENT, "SOLUSDT", "x")))
    _liquidations_store(runner._take_new_liquidations())
    engine.order_executor.shutdown()
    [row] = client.get("/api/liquidations", **bearer).json()
    assert (row["symbol"], row["event_ms"], row["event_age_ms"], row["outcome"], row["reason"]) == (
        "SOLUSDT",
        1_000,
        2_500,
        "skipped",
        "stale_event",
    )
    assert (row["notional"], row["bybit_price"], row["vwap"]) == ("1815", None, None)


def _decimals(*texts):
    from decimal import Decimal

    return [Decimal(text) for text in texts]


def test_nothing_published_is_an_empty_list(client, bearer, redis_db):
    assert client.get("/api/liquidations", **bearer).json() == []


def test_redis_down_is_a_503_that_says_so(client, bearer, monkeypatch):
    import trading.selectors as selectors
    from core.redis_client import redis_client

    monkeypatch.setattr(selectors, "redis_client", lambda: redis_client("redis://127.0.0.1:1/0"))
    response = client.get("/api/liquidations", **bearer)
    assert response.status_code == 503
    assert response.json() == {"detail": "redis unavailable (ConnectionError)"}


def test_it_needs_the_token_and_a_client_from_an_allowed_network(client, bearer, redis_db):
    assert client.get("/api/liquidations").status_code == 401
    assert client.get("/api/liquidations", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/api/liquidations", REMOTE_ADDR="203.0.113.9", **bearer).status_code == 403
    assert client.get("/api/liquidations", **bearer).status_code == 200


def test_the_schema_describes_it(client, bearer):
    schema = json.loads(client.get("/api/schema/?format=json", **bearer).content)
    get = schema["paths"]["/api/liquidations"]["get"]
    assert [p["name"] for p in get["parameters"]] == ["symbol"]
    item = get["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"]
    properties = schema["components"]["schemas"][item.rsplit("/", 1)[1]]["properties"]
    assert {"event_ms", "event_age_ms", "outcome", "reason", "notional"} <= set(properties)
