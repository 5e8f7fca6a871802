"""coins.json / settings.json / allowlist_updated.json import and export."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from controlpanel.config_files import ConfigFileError, config_export, config_import
from portfolio.models import AllowlistEntry, PortfolioSettings
from risk.models import RiskSettings
from trading.models import Coin

LEGACY_COINS = [
    {
        "symbol": "BTC",
        "leverage": 20,
        "take_profit_percent": 0.8,
        "stop_loss_percent": 1.5,
        "long_vwap_offset": 0.4,
        "short_vwap_offset": 0.45,
        "lick_value": 10000,
        "order_size_percent_balance": 2.5,
        "dca_enabled": True,
        "dca_levels": 3,
    },
    {
        "symbol": "SOLUSDT",
        "enabled": False,
        "leverage": 5,
        "take_profit_percent": 2,
        "stop_loss_percent": 4,
        "long_vwap_offset": 1.1,
        "short_vwap_offset": 1.2,
        "lick_value": 2500,
        "order_size_usdt": 15.5,
        "vwap_window_minutes": 240,
    },
]
LEGACY_SETTINGS = {
    "risk_management": {
        "daily_target_pct": 8,
        "daily_stop_pct": 4,
        "equity_usdt": 1200,
        "im_warn_pct": 70,
        "im_reduce_pct": 95,
        "reduce_fraction": 0.25,
        "telegram_alerts": True,
    },
    "portfolio": {"enabled": True, "budget_usdt": 250, "trailing_stop_pct": 6.5},
    "dca": {"levels": 3},
}


def configuration():
    """Everything the import sets, as comparable plain values."""
    coins = [
        {
            f.name: getattr(c, f.name)
            for f in Coin._meta.fields
            if f.name not in ("id", "created_at", "updated_at")
        }
        for c in Coin.objects.order_by("symbol")
    ]
    risk, portfolio = RiskSettings.load(), PortfolioSettings.load()
    skip = ("id", "updated_at")
    return {
        "coins": coins,
        "risk": {f.name: getattr(risk, f.name) for f in risk._meta.fields if f.name not in skip},
        "portfolio": {
            f.name: getattr(portfolio, f.name) for f in portfolio._meta.fields if f.name not in skip
        },
        "allowlist": list(AllowlistEntry.objects.order_by("symbol").values_list("symbol", "enabled", "note")),
    }


@pytest.mark.django_db
def test_legacy_files_import_with_unknown_fields_reported():
    report = config_import(coins=LEGACY_COINS, settings=LEGACY_SETTINGS, allowlist=["ada", "LINKUSDT", "ADA"])
    btc = Coin.objects.get(symbol="BTCUSDT")
    assert btc.order_size_pct_equity == Decimal("2.5") and btc.order_size_usdt is None
    assert btc.long_offset_pct == Decimal("0.4") and btc.enabled is True and btc.vwap_window_minutes == 60
    sol = Coin.objects.get(symbol="SOLUSDT")
    assert sol.enabled is False and sol.order_size_usdt == Decimal("15.5") and sol.vwap_window_minutes == 240
    risk = RiskSettings.load()
    assert (risk.daily_target_pct, risk.im_reduce_pct, risk.reduce_fraction) == (8, 95, Decimal("0.25"))
    assert risk.reduce_cooldown_seconds == 300, "fields the file leaves out keep their values"
    assert PortfolioSettings.load().trailing_stop_pct == Decimal("6.5")
    assert list(AllowlistEntry.objects.values_list("symbol", flat=True)) == ["ADAUSDT", "LINKUSDT"]
    assert "coins.json entry 1 (BTCUSDT): ignored unknown fields dca_enabled, dca_levels" in report.warnings
    assert "settings.json risk_management: ignored unknown fields telegram_alerts" in report.warnings
    assert "settings.json: ignored unknown sections dca" in report.warnings


@pytest.mark.django_db
def test_export_then_import_gives_the_same_configuration(tmp_path):
    config_import(coins=LEGACY_COINS, settings=LEGACY_SETTINGS, allowlist={"symbols": ["ADAUSDT", "XRP"]})
    AllowlistEntry.objects.filter(symbol="XRPUSDT").update(enabled=False, note="too thin")
    before = configuration()
    call_command("export_config", out=tmp_path)

    Coin.objects.all().delete()
    AllowlistEntry.objects.all().delete()
    RiskSettings.objects.all().delete()
    PortfolioSettings.objects.all().delete()
    Coin.objects.create(
        symbol="ETHUSDT",
        long_offset_pct=1,
        short_offset_pct=1,
        min_liquidation_usdt=1,
        order_size_usdt=1,
        leverage=1,
        take_profit_pct=1,
        stop_loss_pct=1,
    )

    call_command(
        "import_config",
        coins=tmp_path / "coins.json",
        settings_file=tmp_path / "settings.json",
        allowlist=tmp_path / "allowlist_updated.json",
        replace=True,
    )
    assert configuration() == before
    # and exporting again writes the very same files
    assert config_export() == {name: json.loads((tmp_path / name).read_text()) for name in config_export()}


@pytest.mark.django_db
def test_import_without_replace_keeps_what_the_files_do_not_mention():
    config_import(coins=LEGACY_COINS)
    config_import(coins=[LEGACY_COINS[1]])
    assert Coin.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ({"coins": {"symbol": "BTC"}}, "coins.json: expected a JSON list"),
        ({"coins": ["BTC"]}, "coins.json entry 1: expected an object"),
        ({"coins": [{"leverage": 5}]}, "coins.json entry 1: symbol: required"),
        ({"coins": [{"symbol": "BTC"}]}, "coins.json entry 1 (BTCUSDT): missing leverage"),
        ({"coins": [dict(LEGACY_COINS[1], leverage="ten")]}, "leverage: expected a whole number, got 'ten'"),
        ({"coins": [dict(LEGACY_COINS[1], leverage=2.5)]}, "leverage: expected a whole number, got 2.5"),
        ({"coins": [dict(LEGACY_COINS[1], lick_value="lots")]}, "lick_value: expected a number, got 'lots'"),
        ({"coins": [dict(LEGACY_COINS[1], enabled="yes")]}, "enabled: expected true or false"),
        ({"coins": [LEGACY_COINS[1], LEGACY_COINS[1]]}, "coins.json entry 2 (SOLUSDT): symbol: listed twice"),
        ({"settings": []}, "settings.json: expected a JSON object"),
        ({"settings": {"risk_management": {"equity_usdt": True}}}, "equity_usdt: expected a number"),
        ({"allowlist": {"coins": ["BTC"]}}, "allowlist_updated.json: expected a list of symbols"),
        ({"allowlist": ["BTC", 7]}, "allowlist_updated.json symbols entry 2: expected a symbol, got 7"),
        (
            {"coins": [dict(LEGACY_COINS[1], max_event_age_ms=50)]},
            "coins.json entry 1 (SOLUSDT): max_event_age_ms: Ensure this value is greater than or equal",
        ),
    ],
)
def test_an_invalid_file_imports_nothing_and_names_the_entry_and_field(documents, message):
    before = configuration()
    with pytest.raises(ConfigFileError) as caught:
        config_import(
            coins=LEGACY_COINS[:1] if "coins" not in documents else documents["coins"],
            settings=documents.get("settings", LEGACY_SETTINGS),
            allowlist=documents.get("allowlist", ["ADA"]),
        )
    assert message in str(caught.value)
    assert configuration() == before


@pytest.mark.django_db
def test_the_command_reports_bad_json_and_missing_files(tmp_path):
    broken = tmp_path / "coins.json"
    broken.write_text('[{"symbol": "BTC",')
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("import_config", coins=broken)
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_config", coins=tmp_path / "absent.json")
    with pytest.raises(CommandError, match="Nothing was imported"):
        broken.write_text('[{"symbol": "BTC", "leverage": 500}]')
        call_command("import_config", coins=broken)
    assert not Coin.objects.exists()


@pytest.mark.django_db
def test_the_demo_configuration_loads_only_into_an_empty_database():
    call_command("load_demo_config")
    assert Coin.objects.count() == 7
    Coin.objects.filter(symbol="BTCUSDT").update(leverage=3)
    call_command("load_demo_config")
    assert Coin.objects.get(symbol="BTCUSDT").leverage == 3


@pytest.mark.django_db
def test_max_event_age_ms_is_optional_in_coins_json_and_round_trips():
    config_import(coins=LEGACY_COINS)  # files from before the setting: the default
    assert set(Coin.objects.values_list("max_event_age_ms", flat=True)) == {2000}
    config_import(coins=[dict(LEGACY_COINS[1], max_event_age_ms=1500)])
    assert Coin.objects.get(symbol="SOLUSDT").max_event_age_ms == 1500
    assert Coin.objects.get(symbol="BTCUSDT").max_event_age_ms == 2000
    exported = {entry["symbol"]: entry for entry in config_export()["coins.json"]}
    assert (exported["SOLUSDT"]["max_event_age_ms"], exported["BTCUSDT"]["max_event_age_ms"]) == (1500, 2000)
