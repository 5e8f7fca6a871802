"""The demo configuration's coins trade in sim only: outside sim they start disabled, and
the start says so, until the owner enables a coin (admin, API) or imports their own."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.forms.models import model_to_dict

from controlpanel.launcher import demo_coins_notice
from portfolio.models import AllowlistEntry
from trading.models import Coin, Decision

pytestmark = pytest.mark.django_db

DEMO_SYMBOLS = {
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "ADAUSDT",
    "LTCUSDT",
}
# The demo's allowlist (the portfolio strategy's, off by default): never a demo coin.
DEMO_ALLOWLIST = {"BNBUSDT", "LINKUSDT", "AVAXUSDT"}


def enabled() -> set[str]:
    return set(Coin.objects.filter(enabled=True).values_list("symbol", flat=True))


def demo() -> set[str]:
    return set(Coin.objects.filter(demo=True).values_list("symbol", flat=True))


def test_the_demo_coins_are_marked_and_trade_in_sim(django_capture_on_commit_callbacks):
    call_command("load_demo_config")
    assert demo() == DEMO_SYMBOLS and enabled() == DEMO_SYMBOLS
    assert set(AllowlistEntry.objects.filter(enabled=True).values_list("symbol", flat=True)) == DEMO_ALLOWLIST
    notice = demo_coins_notice(exchange_mode="sim", web_port="8000")
    assert "7 coins marked demo" in notice and "outside sim they start disabled" in notice
    assert enabled() == DEMO_SYMBOLS


def test_outside_sim_the_demo_coins_start_disabled_until_the_owner_enables_them(
    client, api_token, tmp_path, django_capture_on_commit_callbacks
):
    call_command("load_demo_config")
    # A coin of the owner's own, added while in sim, is not the demo's: it keeps trading.
    Coin.objects.create(
        symbol="SUIUSDT",
        long_offset_pct="1",
        short_offset_pct="1",
        min_liquidation_usdt="1000",
        order_size_usdt="5",
        leverage=5,
        take_profit_pct="1",
        stop_loss_pct="2",
    )
    # An edit in sim that does not switch the coin on leaves it the demo's.
    client_headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token}", "content_type": "application/json"}
    answer = client.patch(
        "/api/coins/XRPUSDT", json.dumps({"min_liquidation_usdt": "2500"}), **client_headers
    )
    assert answer.status_code == 200 and answer.json()["demo"] is True

    with django_capture_on_commit_callbacks(execute=True):
        notice = demo_coins_notice(exchange_mode="live", web_port="8123")
    assert enabled() == {"SUIUSDT"} and demo() == DEMO_SYMBOLS
    assert "Demo coins disabled (EXCHANGE_MODE=live): ADAUSDT, BTCUSDT, DOGEUSDT" in notice
    assert "http://127.0.0.1:8123/admin/trading/coin/" in notice and "import_config --coins" in notice
    journal = Decision.objects.get(reason_code="demo_coins_outside_sim")
    assert journal.details == {"mode": "live", "symbols": sorted(DEMO_SYMBOLS)}

    # The API: switching a demo coin on makes it the owner's.
    answer = client.patch("/api/coins/BTCUSDT", json.dumps({"enabled": True}), **client_headers)
    assert answer.status_code == 200 and answer.json()["demo"] is False
    # The admin: the coin's form with "enabled" ticked.
    admin = get_user_model().objects.create_superuser("owner", "", "pw")
    client.force_login(admin)
    eth = Coin.objects.get(symbol="ETHUSDT")
    form = {key: value for key, value in model_to_dict(eth).items() if value is not None and key != "demo"}
    form["enabled"] = "on"
    answer = client.post(f"/admin/trading/coin/{eth.pk}/change/", form)
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    assert demo() == DEMO_SYMBOLS - {"BTCUSDT", "ETHUSDT"} and enabled() == {"SUIUSDT", "BTCUSDT", "ETHUSDT"}
    # import_config: the owner's own file (the demo's SOL among them) with --replace.
    coins_file = tmp_path / "coins.json"
    coins_file.write_text(
        json.dumps(
            [
                {"symbol": symbol, "leverage": 5, "take_profit_percent": 1, "stop_loss_percent": 2}
                | {"long_vwap_offset": 1, "short_vwap_offset": 1, "lick_value": 5000, "order_size_usdt": 5}
                for symbol in ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "TRX", "DOT")
            ]
        )
    )
    call_command("import_config", coins=coins_file, replace=True)
    assert demo() == set() and not Coin.objects.filter(symbol__in=["LTCUSDT", "SUIUSDT"]).exists()

    # The next start outside sim leaves the owner's coins alone and says nothing.
    assert demo_coins_notice(exchange_mode="live", web_port="8123") == ""
    assert enabled() == {
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "XRPUSDT",
        "DOGEUSDT",
        "ADAUSDT",
        "TRXUSDT",
        "DOTUSDT",
    }


def test_a_demo_coin_the_owner_has_not_enabled_stays_off_and_the_start_keeps_saying_so(
    client, api_token, django_capture_on_commit_callbacks
):
    call_command("load_demo_config")
    with django_capture_on_commit_callbacks(execute=True):
        demo_coins_notice(exchange_mode="demo", web_port="8000")
    answer = client.patch(
        "/api/coins/DOGEUSDT",
        json.dumps({"enabled": True}),
        HTTP_AUTHORIZATION=f"Bearer {api_token}",
        content_type="application/json",
    )
    assert answer.status_code == 200
    notice = demo_coins_notice(exchange_mode="demo", web_port="8000")
    assert "DOGEUSDT" not in notice and "BTCUSDT" in notice
    assert enabled() == {"DOGEUSDT"}
    # Back in sim, the demo coins stay as the owner left them (off): sim never switches them on.
    demo_coins_notice(exchange_mode="sim", web_port="8000")
    assert enabled() == {"DOGEUSDT"}


def test_a_database_from_before_the_mark_gets_its_untouched_demo_coins_marked():
    mark = importlib.import_module("trading.migrations.0005_mark_demo_coins").mark_demo_coins
    call_command("load_demo_config")
    Coin.objects.update(demo=False)  # as the new column's default left them
    Coin.objects.filter(symbol="ETHUSDT").update(leverage=5)  # the owner's edit: theirs now
    mark(django_apps, None)
    assert demo() == DEMO_SYMBOLS - {"ETHUSDT"}
