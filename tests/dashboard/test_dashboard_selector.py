"""controlpanel.dashboard: the numbers the page shows, from the database and Redis."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from controlpanel.dashboard import (
    account_view,
    daily_view,
    dashboard_initial,
    im_view,
    lock_view,
)
from core import keys
from core.models import TradingState
from core.text import money_text, pct_text
from risk.models import DailyPnL, RiskSettings
from trading.models import Decision

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.mark.parametrize(
    ("value", "signed", "text"),
    [
        ("10234.5678", False, "10,234.57"),
        ("0.005", False, "0.00"),  # half-even
        ("0.015", False, "0.02"),
        ("12.3", True, "+12.30"),
        ("-5", True, "-5.00"),
        ("0", True, "0.00"),
        (None, False, ""),
        ("", False, ""),
    ],
)
def test_money_text(value, signed, text):
    assert money_text(value, signed=signed) == text


@pytest.mark.parametrize(
    ("value", "signed", "text"),
    [
        ("85.456", False, "85.46"),
        ("2.5", True, "+2.50"),
        ("-1.2345", True, "-1.23"),
        ("Infinity", False, "∞"),
    ],
)
def test_pct_text(value, signed, text):
    assert pct_text(value, signed=signed) == text


@pytest.mark.django_db
def test_daily_pnl_against_the_target_and_the_stop():
    risk = RiskSettings.load()  # target 10 %, stop 5 %
    day = DailyPnL.objects.create(
        date=date(2026, 3, 14),
        baseline_equity=Decimal("10000"),
        last_equity=Decimal("10250"),
        pnl_usdt=Decimal("250"),
        pnl_pct=Decimal("2.5"),
        high_equity=Decimal("10300"),
        low_equity=Decimal("9900"),
    )
    view = daily_view(risk=risk, day=day, today=date(2026, 3, 14))
    assert {key: view[key] for key in ("pnl_pct_text", "pnl_usdt_text", "target_pct", "stop_pct")} == {
        "pnl_pct_text": "+2.50",
        "pnl_usdt_text": "+250.00",
        "target_pct": "10",
        "stop_pct": "5",
    }
    assert (view["target_equity_text"], view["stop_equity_text"]) == ("11,000.00", "9,500.00")
    assert (view["to_target_pct_text"], view["to_stop_pct_text"]) == ("7.50", "7.50")
    assert daily_view(risk=risk, day=None, today=date(2026, 3, 14))["available"] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("im_pct", "level", "text"),
    [
        ("79.99", "none", "79.99"),
        ("80", "warn", "80.00"),
        ("100", "reduce", "100.00"),
        (None, "unknown", ""),
        ("Infinity", "reduce", "∞"),
    ],
)
def test_im_against_the_warn_and_reduce_levels(im_pct, level, text):
    view = im_view(risk=RiskSettings.load(), im_pct=im_pct)
    assert (view["level"], view["pct_text"], view["warn_pct"], view["reduce_pct"]) == (
        level,
        text,
        "80",
        "100",
    )


def test_an_old_snapshot_is_stale_and_an_error_shows_beside_it():
    snapshot = {"at_ms": NOW_MS - 15_000, "equity": "9999.999", "positions": [], "open_orders": []}
    view = account_view(snapshot=snapshot, error={"error": "RetryableError (code 10016): busy"}, now=NOW)
    assert (view["age_s"], view["stale"], view["equity_text"]) == (15.0, True, "10,000.00")
    assert view["error"] == "RetryableError (code 10016): busy"
    fresh = account_view(snapshot={**snapshot, "at_ms": NOW_MS - 2_000}, error=None, now=NOW)
    assert (fresh["stale"], fresh["error"]) == (False, "")
    assert account_view(snapshot=None, error=None, now=NOW)["available"] is False


@pytest.mark.django_db
def test_the_lock_state_says_what_stops_trading():
    state = TradingState.load()
    assert lock_view(state=state, now=NOW)["may_trade"] is True
    state.panic_locked, state.panic_since, state.panic_reason = True, NOW, "drill"
    state.disabled_until, state.disabled_reason = NOW - timedelta(seconds=1), "daily control: stop hit"
    view = lock_view(state=state, now=NOW)
    assert (view["may_trade"], view["panic_locked"], view["panic_since_text"]) == (
        False,
        True,
        "2026-03-14 12:00:00",
    )
    assert (view["disabled"], view["disabled_reason"]) == (False, "")  # that disable is over


@pytest.mark.django_db
def test_the_first_paint_gathers_redis_and_the_database(redis_db):
    redis_db.set(
        keys.ACCOUNT_SNAPSHOT,
        json.dumps(
            {
                "at_ms": NOW_MS - 1000,
                "equity": "10500",
                "im_pct": "12.5",
                "positions": [
                    {
                        "symbol": "BTCUSDT",
                        "owner": "WL",
                        "side": "long",
                        "size": "0.010",
                        "unrealised_pnl": "-3.456",
                        "position_value": "970",
                    },
                ],
                "open_orders": [
                    {"symbol": "SOLUSDT", "created_ms": NOW_MS - 60_000, "qty": "1.0", "stop_order_type": ""},
                    {
                        "symbol": "BTCUSDT",
                        "created_ms": NOW_MS,
                        "qty": "0.000",
                        "stop_order_type": "TakeProfit",
                    },
                ],
            }
        ),
    )
    redis_db.set(keys.ACCOUNT_SNAPSHOT_ERROR, "not json")  # corrupt: reads as none
    redis_db.set(
        keys.ENGINE_STATS, json.dumps({"ready": True, "skips": {"offset_not_met": 3, "cooldown": 7}})
    )
    yesterday_ms = NOW_MS - 13 * 3600 * 1000
    redis_db.rpush(keys.EQUITY_SAMPLES, f"{yesterday_ms} 9000", f"{NOW_MS - 60_000} 10400", f"{NOW_MS} 10500")
    redis_db.rpush(
        keys.ENGINE_LIQUIDATIONS,
        json.dumps({"at_ms": 1, "symbol": "A"}),
        json.dumps({"at_ms": 2, "symbol": "B"}),
    )
    for day, pct in ((date(2026, 3, 13), "-1.5"), (date(2026, 3, 14), "5")):
        DailyPnL.objects.create(
            date=day,
            baseline_equity=Decimal("10000"),
            last_equity=Decimal("10500"),
            pnl_usdt=Decimal("500"),
            pnl_pct=Decimal(pct),
            high_equity=Decimal("10500"),
            low_equity=Decimal("10000"),
        )
    older = Decision.objects.create(strategy="risk", action="set_tpsl", outcome="taken")
    newer = Decision.objects.create(strategy="wl", symbol="BTCUSDT", action="open_long", outcome="skipped")

    data = dashboard_initial(now=NOW)

    assert data["account"]["equity_text"] == "10,500.00" and data["account"]["error"] == ""
    [position] = data["account"]["positions"]
    assert (position["owner"], position["unrealised_pnl_text"]) == ("WL", "-3.46")
    limit, take_profit = data["account"]["open_orders"]
    assert (limit["created_text"], limit["qty_text"]) == ("11:59:00", "1.0")
    assert take_profit["qty_text"] == "position"  # a position TP/SL closes whatever is open
    assert data["im"]["level"] == "none" and data["im"]["pct_text"] == "12.50"
    assert data["daily"]["pnl_pct_text"] == "+5.00"
    assert data["engine"]["skips"] == [
        {"reason": "cooldown", "count": 7},
        {"reason": "offset_not_met", "count": 3},
    ]
    assert data["engine"]["skips_total"] == 10
    assert data["equity_samples"] == [[NOW_MS - 60_000, "10400"], [NOW_MS, "10500"]]  # today's only
    assert data["equity_sample"] == [NOW_MS, "10500"]
    assert [row["symbol"] for row in data["liquidations"]] == ["B", "A"]  # newest first
    assert [row["date"] for row in data["daily_history"]] == ["2026-03-13", "2026-03-14"]  # the chart's order
    assert [d["id"] for d in data["decisions"]] == [newer.id, older.id]
    assert data["last_decision_id"] == newer.id
    json.dumps(data)  # it all goes into the page and down the websocket


@pytest.mark.integration
@pytest.mark.django_db
def test_the_page_renders_from_redis_without_reaching_the_exchange(admin_client, redis_db, settings):
    settings.SIM_BASE_URL = "http://127.0.0.1:9"  # nothing listens: any exchange call would fail
    redis_db.set(
        keys.ACCOUNT_SNAPSHOT,
        json.dumps(
            {
                "at_ms": int(datetime.now(tz=UTC).timestamp() * 1000),
                "equity": "10234.5",
                "im_pct": "3",
                "positions": [
                    {
                        "symbol": "ETHUSDT",
                        "owner": "PM",
                        "side": "short",
                        "size": "0.50",
                        "entry_price": "3300.00",
                        "mark_price": "3290.00",
                        "unrealised_pnl": "5",
                        "take_profit": None,
                        "stop_loss": None,
                    },
                ],
                "open_orders": [],
            }
        ),
    )
    page = admin_client.get("/").content.decode()
    assert '<p class="big" id="equity">10,234.50</p>' in page
    assert "ETHUSDT" in page and "owner-PM" in page and "+5.00" in page
    assert 'id="equity-chart"' in page and "vendor/chartjs/chart.umd.min.js" in page


@pytest.mark.django_db
def test_the_page_is_for_staff_only(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123")
    client.force_login(viewer)
    assert client.get("/").status_code == 403


@pytest.mark.django_db
def test_the_panic_receipt_is_the_last_run_not_a_joined_trigger_and_says_what_was_left():
    from controlpanel.dashboard import panic_receipt_view
    from panic.selectors import panic_receipt_last

    assert panic_receipt_view(panic_receipt_last()) is None
    Decision.objects.create(
        strategy="panic",
        action="panic",
        outcome="failed",
        reason_code="not_flat",
        created_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        details={
            "by": "telegram:42",
            "requested_reason": "/close",
            "status": "not_flat",
            "rounds": 1,
            "cancelled_orders": 2,
            "closed": ["BTCUSDT"],
            "remaining_positions": ["ETHUSDT"],
            "remaining_orders": 1,
            "errors": ["ETHUSDT: ReduceOnlyRejected (code 110017)"],
        },
    )
    Decision.objects.create(  # a second trigger that joined the run: not a receipt of its own
        strategy="panic", action="panic", outcome="skipped", reason_code="already_running", details={}
    )
    view = panic_receipt_view(panic_receipt_last())
    assert view == {
        "flat": False,
        "summary": "2026-03-01 09:30:00 UTC by telegram:42 (/close) · NOT FLAT (not_flat) · 1 round · "
        "2 orders cancelled · closed BTCUSDT · left ETHUSDT, 1 orders",
        "errors": "ETHUSDT: ReduceOnlyRejected (code 110017)",
        "closes": [],  # a row journaled before receipts had closes and timings
        "timings": "",
    }


@pytest.mark.django_db
def test_the_panic_receipt_shows_each_close_and_the_phase_timings():
    from controlpanel.dashboard import panic_receipt_view
    from panic.selectors import panic_receipt_last

    close = {"symbol": "ETHUSDT", "side": "Buy", "qty": "0.50", "position_idx": 0, "exposure": "1650"}
    Decision.objects.create(
        strategy="panic",
        action="panic",
        outcome="taken",
        reason_code="flat",
        created_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        details={
            "by": "api:owner",
            "status": "flat",
            "rounds": 1,
            "cancelled_orders": 5,
            "closed": ["BTCUSDT", "ETHUSDT"],
            "closes": [
                {**close, "avg_price": "3300.33", "realised_pnl": "-1.25"},
                {**close, "symbol": "BTCUSDT", "side": "Sell", "qty": "0.010", "avg_price": None},
            ],
            "timings_ms": {"lock": 4.2, "cancel": 6.0, "closes": 2013.4, "verification": 5.1, "total": 2031},
        },
    )
    view = panic_receipt_view(panic_receipt_last())
    assert view["closes"] == ["ETHUSDT Buy 0.50 @ 3300.33, PnL -1.25", "BTCUSDT Sell 0.010"]
    assert view["timings"] == "lock 4 ms · cancel 6 ms · closes 2,013 ms · verification 5 ms · total 2,031 ms"
