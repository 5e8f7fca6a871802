"""One symbol, one strategy: an enabled coin of the liquidation engine is never also an enabled
entry of the portfolio allowlist. The admin, the API and the importers refuse it naming the
symbol; a scan that meets one anyway (an older database) skips it."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.forms.models import model_to_dict

from controlpanel.config_files import ConfigFileError, config_import
from portfolio.models import AllowlistEntry
from portfolio.scan import portfolio_scan_step
from tests.support.portfolio import NOW, allow
from tests.support.sim import set_prices, sim_orders
from trading.models import Coin, Decision

pytestmark = pytest.mark.django_db

COIN_JSON = {
    "leverage": 10,
    "take_profit_percent": 1,
    "stop_loss_percent": 2,
    "long_vwap_offset": 0.6,
    "short_vwap_offset": 0.6,
    "lick_value": 3000,
    "order_size_usdt": 10,
}


def coin(symbol: str, *, enabled: bool = True) -> Coin:
    return Coin.objects.create(
        symbol=symbol,
        enabled=enabled,
        long_offset_pct="0.6",
        short_offset_pct="0.6",
        min_liquidation_usdt="3000",
        order_size_usdt="10",
        leverage=10,
        take_profit_pct="1",
        stop_loss_pct="2",
    )


def api(client, api_token, method: str, path: str, body: dict):
    return getattr(client, method)(
        path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_token}"
    )


def test_the_admin_refuses_an_allowlist_entry_for_an_enabled_coin_and_the_other_way_round(admin_client):
    coin("BNBUSDT")
    page = admin_client.post("/admin/portfolio/allowlistentry/add/", {"symbol": "BNBUSDT", "enabled": "on"})
    assert page.status_code == 200  # the form again, with the error
    assert "BNBUSDT is an enabled coin of the liquidation engine" in page.content.decode()
    assert not AllowlistEntry.objects.exists()
    # Disabled on the allowlist it may stay beside the coin.
    assert admin_client.post("/admin/portfolio/allowlistentry/add/", {"symbol": "BNBUSDT"}).status_code == 302

    allow("LINKUSDT")
    link = coin("LINKUSDT", enabled=False)
    form = {key: value for key, value in model_to_dict(link).items() if value is not None and key != "demo"}
    form["enabled"] = "on"
    page = admin_client.post(f"/admin/trading/coin/{link.pk}/change/", form)
    assert page.status_code == 200
    assert "LINKUSDT is an enabled entry of the portfolio allowlist" in page.content.decode()
    assert Coin.objects.get(symbol="LINKUSDT").enabled is False


def test_the_api_refuses_the_overlap_naming_the_symbol(client, api_token):
    coin("BNBUSDT")
    answer = api(client, api_token, "post", "/api/allowlist", {"symbol": "BNBUSDT"})
    assert answer.status_code == 400
    assert answer.json()["symbol"][0].startswith("BNBUSDT is an enabled coin of the liquidation engine")
    assert (
        api(client, api_token, "post", "/api/allowlist", {"symbol": "BNBUSDT", "enabled": False}).status_code
        == 201
    )
    # Switching the entry on later is the same overlap.
    answer = api(client, api_token, "patch", "/api/allowlist/BNBUSDT", {"enabled": True})
    assert answer.status_code == 400 and "BNBUSDT" in answer.json()["symbol"][0]

    allow("LINKUSDT")
    coin("LINKUSDT", enabled=False)
    answer = api(client, api_token, "patch", "/api/coins/LINKUSDT", {"enabled": True})
    assert answer.status_code == 400
    assert answer.json()["symbol"][0].startswith("LINKUSDT is an enabled entry of the portfolio allowlist")
    assert Coin.objects.get(symbol="LINKUSDT").enabled is False


def test_the_importer_refuses_the_overlap_and_imports_nothing(tmp_path):
    allow("AVAXUSDT")
    with pytest.raises(ConfigFileError) as refused:
        config_import(coins=[{"symbol": "BTC", **COIN_JSON}, {"symbol": "AVAX", **COIN_JSON}])
    assert str(refused.value).startswith(
        "coins.json (AVAXUSDT): symbol: AVAXUSDT is an enabled entry of the portfolio allowlist"
    )
    assert not Coin.objects.exists()

    coin("BNBUSDT")
    allowlist_file = tmp_path / "allowlist_updated.json"
    allowlist_file.write_text(json.dumps(["BNB", "XRP"]))
    with pytest.raises(CommandError) as refused:
        call_command("import_config", allowlist=allowlist_file)
    assert "allowlist_updated.json (BNBUSDT): symbol: BNBUSDT is an enabled coin" in str(refused.value)
    assert "Nothing was imported" in str(refused.value)
    assert list(AllowlistEntry.objects.values_list("symbol", flat=True)) == ["AVAXUSDT"]


def test_one_import_may_move_a_symbol_from_the_allowlist_to_the_coins():
    allow("AVAXUSDT", "XRPUSDT")
    config_import(coins=[{"symbol": "AVAX", **COIN_JSON}], allowlist=["XRP"], replace=True)
    assert list(Coin.objects.values_list("symbol", flat=True)) == ["AVAXUSDT"]
    assert list(AllowlistEntry.objects.values_list("symbol", flat=True)) == ["XRPUSDT"]


@pytest.mark.integration
def test_a_scan_skips_a_symbol_that_is_also_an_enabled_coin(sim, gateway, pm):
    # A database from before the rule: both sides enabled (written past the validation).
    coin("XRPUSDT")
    allow("XRPUSDT", "DOGEUSDT")
    set_prices(sim, XRPUSDT="2.7500", DOGEUSDT="0.34650")  # +10 % and +5 %

    result = portfolio_scan_step(gateway=gateway, now=NOW)

    assert result.entered == ["DOGEUSDT"] and result.skipped == {"XRPUSDT": "liquidation_coin"}
    assert [o["symbol"] for o in sim_orders(sim)] == ["DOGEUSDT"]
    skip = Decision.objects.get(strategy="pm", action="enter", symbol="XRPUSDT")
    assert (skip.outcome, skip.reason_code) == ("skipped", "liquidation_coin")
