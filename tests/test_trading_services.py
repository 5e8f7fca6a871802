"""Trading switches and config notices reach Redis on commit; the instrument table refresh."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from controlpanel.config_files import config_import
from core import keys
from core.models import TradingState
from core.redis_client import events_channel
from trading.instruments import Instrument as VenueInstrument
from trading.models import Coin, Decision, Instrument
from trading.services import (
    instruments_store,
    trading_disable_until,
    trading_enable,
    trading_halt,
    trading_resume,
)


@pytest.fixture
def events(redis_db):
    pubsub = redis_db.pubsub()
    pubsub.subscribe(events_channel())
    pubsub.get_message(timeout=1)  # the subscribe confirmation

    def received():
        messages = []
        while (message := pubsub.get_message(timeout=0.2)) is not None:
            messages.append(json.loads(message["data"]))
        return messages

    yield received
    pubsub.close()


@pytest.mark.django_db
def test_a_halt_is_recorded_journaled_and_published_on_commit(
    events, redis_db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        trading_halt(by="telegram:42", reason="/kill")
    assert events() == [], "nothing is published before the commit"
    for callback in callbacks:
        callback()
    state = TradingState.load()
    assert state.halted and state.halted_by == "telegram:42"
    [message] = events()
    assert message["type"] == "trading_state" and message["halted"] is True
    assert json.loads(redis_db.get(keys.TRADING_STATE))["halted_by"] == "telegram:42"
    assert Decision.objects.get().reason_code == "halted"

    with django_capture_on_commit_callbacks(execute=True):
        trading_resume(by="api-token")
    assert events()[0]["halted"] is False and not TradingState.load().halted


@pytest.mark.django_db
def test_disable_until_carries_the_time_in_ms(events, django_capture_on_commit_callbacks):
    until = timezone.now().replace(microsecond=0) + timedelta(hours=3)
    with django_capture_on_commit_callbacks(execute=True):
        trading_disable_until(until=until, reason="daily stop -5%")
    [message] = events()
    assert message["disabled_until_ms"] == int(until.timestamp() * 1000)
    assert message["disabled_reason"] == "daily stop -5%"
    with django_capture_on_commit_callbacks(execute=True):
        trading_enable()
    assert events()[0]["disabled_until_ms"] is None


@pytest.mark.django_db
def test_coin_and_settings_edits_announce_a_config_change(events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        config_import(
            coins=[
                {
                    "symbol": "BTC",
                    "leverage": 5,
                    "take_profit_percent": 1,
                    "stop_loss_percent": 2,
                    "long_vwap_offset": 1,
                    "short_vwap_offset": 1,
                    "lick_value": 100,
                    "order_size_usdt": 10,
                }
            ]
        )
    assert {m["type"] for m in events()} == {"config"}
    with django_capture_on_commit_callbacks(execute=True):
        Coin.objects.get().delete()
    assert events() == [{"type": "config"}]


def venue_instrument(symbol, status="Trading", max_leverage="50"):
    return VenueInstrument(
        symbol=symbol,
        qty_step=Decimal("0.01"),
        min_order_qty=Decimal("0.01"),
        max_order_qty=Decimal("1000"),
        max_market_order_qty=Decimal("100"),
        min_notional_value=Decimal("5"),
        tick_size=Decimal("0.01"),
        max_leverage=Decimal(max_leverage),
        status=status,
    )


@pytest.mark.django_db
def test_the_instrument_table_follows_the_venue_and_marks_delisted_symbols():
    assert instruments_store([venue_instrument("SOLUSDT"), venue_instrument("OLDUSDT")]) == 2
    assert instruments_store([venue_instrument("SOLUSDT", max_leverage="25")]) == 1
    assert Instrument.objects.get(symbol="SOLUSDT").max_leverage == Decimal("25")
    assert Instrument.objects.get(symbol="OLDUSDT").status == "Delisted"


@pytest.mark.django_db
def test_old_skips_are_pruned_but_orders_and_failures_stay():
    from trading.services import journal_prune

    now = timezone.now()
    for days, outcome in ((40, "skipped"), (40, "taken"), (40, "failed"), (5, "skipped")):
        Decision.objects.create(
            created_at=now - timedelta(days=days),
            strategy="wl",
            symbol="BTCUSDT",
            action="open_long",
            outcome=outcome,
        )
    assert journal_prune(keep_skipped_days=30, now=now) == 1
    assert sorted(Decision.objects.values_list("outcome", flat=True)) == ["failed", "skipped", "taken"]


def test_the_events_channel_names_the_redis_database(settings):
    from core.redis_client import events_channel, redis_client

    db = redis_client().connection_pool.connection_kwargs.get("db", 0)
    assert events_channel() == f"controlpanel:events:{db}"
