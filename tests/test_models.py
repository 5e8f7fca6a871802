"""Every validation rule, checked three ways: the model, the admin form and the importer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from controlpanel.config_files import ConfigFileError, config_import
from core.models import TradingState
from portfolio.models import AllowlistEntry, PortfolioSettings
from risk.models import RiskSettings
from trading.models import Coin, Instrument

GOOD_COIN_FILE_ENTRY = {
    "symbol": "BTCUSDT",
    "enabled": True,
    "long_vwap_offset": 0.5,
    "short_vwap_offset": 0.7,
    "lick_value": 5000,
    "order_size_usdt": 10,
    "leverage": 10,
    "take_profit_percent": 1.0,
    "stop_loss_percent": 2.0,
    "vwap_window_minutes": 60,
    "entry_cooldown_seconds": 60,
}
# coins.json key -> admin form field
FORM_FIELD = {
    "symbol": "symbol",
    "enabled": "enabled",
    "long_vwap_offset": "long_offset_pct",
    "short_vwap_offset": "short_offset_pct",
    "lick_value": "min_liquidation_usdt",
    "order_size_usdt": "order_size_usdt",
    "order_size_percent_balance": "order_size_pct_equity",
    "leverage": "leverage",
    "take_profit_percent": "take_profit_pct",
    "stop_loss_percent": "stop_loss_pct",
    "vwap_window_minutes": "vwap_window_minutes",
    "entry_cooldown_seconds": "entry_cooldown_seconds",
    "max_event_age_ms": "max_event_age_ms",
}

# (change to the good entry, the form field that must carry the error, words of the message)
BAD_COINS = [
    ({"symbol": "BTCUSD"}, "symbol", "not a USDT perpetual"),
    ({"symbol": "BTC-USDT"}, "symbol", "not a USDT perpetual"),
    ({"long_vwap_offset": 0}, "long_offset_pct", "greater than or equal to"),
    ({"long_vwap_offset": -1}, "long_offset_pct", "greater than or equal to"),
    ({"short_vwap_offset": 51}, "short_offset_pct", "less than or equal to 50"),
    ({"lick_value": 0}, "min_liquidation_usdt", "greater than or equal to"),
    ({"order_size_usdt": -5}, "order_size_usdt", "greater than or equal to"),
    ({"order_size_percent_balance": 5}, "order_size_usdt", "exactly one"),
    ({"order_size_usdt": None}, "order_size_usdt", "exactly one"),
    ({"leverage": 0}, "leverage", "greater than or equal to 1"),
    ({"leverage": 101}, "leverage", "less than or equal to 100"),
    ({"take_profit_percent": 0}, "take_profit_pct", "greater than or equal to"),
    ({"stop_loss_percent": 0}, "stop_loss_pct", "greater than or equal to"),
    ({"stop_loss_percent": 10, "leverage": 10}, "stop_loss_pct", "beyond liquidation"),
    ({"stop_loss_percent": 3, "leverage": 50}, "stop_loss_pct", "beyond liquidation"),
    ({"vwap_window_minutes": 0}, "vwap_window_minutes", "greater than or equal to 1"),
    ({"vwap_window_minutes": 1441}, "vwap_window_minutes", "less than or equal to 1440"),
    ({"max_event_age_ms": 99}, "max_event_age_ms", "greater than or equal to 100"),
    ({"max_event_age_ms": 60_001}, "max_event_age_ms", "less than or equal to 60000"),
]


def coin_entry(**changes):
    entry = dict(GOOD_COIN_FILE_ENTRY)
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


def admin_form_data(entry):
    data = {"max_event_age_ms": "2000"}  # the admin form shows the default filled in
    for key, value in entry.items():
        if key == "enabled":
            if value:
                data["enabled"] = "on"
            continue
        data[FORM_FIELD[key]] = "" if value is None else str(value)
    return data


@pytest.mark.django_db
def test_the_good_coin_is_accepted_everywhere(admin_client):
    report = config_import(coins=[GOOD_COIN_FILE_ENTRY])
    assert report.created == ["coin BTCUSDT"]
    coin = Coin.objects.get()
    assert coin.long_offset_pct == Decimal("0.5") and coin.leverage == 10

    entry = coin_entry(symbol="ETHUSDT")
    response = admin_client.post("/admin/trading/coin/add/", admin_form_data(entry))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Coin.objects.filter(symbol="ETHUSDT").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field", "words"), BAD_COINS)
def test_a_bad_coin_is_refused_by_the_model(change, field, words):
    entry = coin_entry(**change)
    coin = Coin(symbol=entry["symbol"])
    for key, value in entry.items():
        if key != "symbol":
            setattr(coin, FORM_FIELD[key], Decimal(str(value)) if isinstance(value, float) else value)
    with pytest.raises(ValidationError) as caught:
        coin.full_clean()
    assert field in caught.value.message_dict
    assert words in " ".join(caught.value.message_dict[field])


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field", "words"), BAD_COINS)
def test_a_bad_coin_is_refused_by_the_admin_form(admin_client, change, field, words):
    response = admin_client.post("/admin/trading/coin/add/", admin_form_data(coin_entry(**change)))
    assert response.status_code == 200  # the form comes back with errors
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not Coin.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field", "words"), BAD_COINS)
def test_a_bad_coin_is_refused_by_the_importer_and_nothing_is_saved(change, field, words):
    good = coin_entry(symbol="ETHUSDT")
    bad = coin_entry(**change)
    with pytest.raises(ConfigFileError) as caught:
        config_import(coins=[good, bad])
    message = str(caught.value)
    assert message.startswith("coins.json entry 2")
    assert words in message
    assert not Coin.objects.exists(), "the good entry before the bad one must not be saved either"


@pytest.mark.django_db
def test_a_symbol_missing_from_the_exchange_is_refused_once_instruments_are_known(
    btcusdt_instrument, admin_client
):
    with pytest.raises(ConfigFileError, match="DOGEUSDT is not a tradable linear USDT perpetual"):
        config_import(coins=[coin_entry(symbol="DOGE")])
    response = admin_client.post("/admin/trading/coin/add/", admin_form_data(coin_entry(symbol="DOGEUSDT")))
    assert "not a tradable" in " ".join(response.context["adminform"].form.errors["symbol"])
    config_import(coins=[coin_entry(symbol="BTC")])
    assert Coin.objects.get().symbol == "BTCUSDT"


@pytest.mark.django_db
def test_leverage_above_the_instruments_maximum_is_refused(btcusdt_instrument):
    Instrument.objects.filter(pk=btcusdt_instrument.pk).update(max_leverage=Decimal("25"))
    with pytest.raises(ConfigFileError, match="allows at most 25x"):
        config_import(coins=[coin_entry(leverage=50, stop_loss_percent=1)])


@pytest.mark.django_db
def test_lower_case_symbols_are_refused_by_the_admin_but_normalised_by_the_importer(admin_client):
    response = admin_client.post("/admin/trading/coin/add/", admin_form_data(coin_entry(symbol="btcusdt")))
    assert "upper case" in " ".join(response.context["adminform"].form.errors["symbol"])
    config_import(coins=[coin_entry(symbol="btc")])
    assert Coin.objects.get().symbol == "BTCUSDT"


BAD_RISK = [
    ({"daily_target_pct": "0"}, "daily_target_pct", "greater than or equal to"),
    ({"daily_stop_pct": "-1"}, "daily_stop_pct", "greater than or equal to"),
    ({"daily_stop_pct": "101"}, "daily_stop_pct", "less than or equal to 100"),
    ({"equity_usdt": "0"}, "equity_usdt", "greater than or equal to"),
    ({"im_warn_pct": "100", "im_reduce_pct": "100"}, "im_warn_pct", "must be below IM reduce"),
    ({"im_warn_pct": "90", "im_reduce_pct": "80"}, "im_warn_pct", "must be below IM reduce"),
    ({"reduce_fraction": "0"}, "reduce_fraction", "greater than or equal to"),
    ({"reduce_fraction": "1.5"}, "reduce_fraction", "less than or equal to 1"),
    ({"reduce_cooldown_seconds": "5"}, "reduce_cooldown_seconds", "greater than or equal to 10"),
    ({"max_open_positions": "0"}, "max_open_positions", "greater than or equal to 1"),
]
RISK_FORM = {
    "daily_target_pct": "10",
    "daily_stop_pct": "5",
    "equity_usdt": "350",
    "im_warn_pct": "80",
    "im_reduce_pct": "100",
    "reduce_fraction": "0.2",
    "reduce_cooldown_seconds": "300",
    "max_open_positions": "5",
    "unknown_positions": "adopt",
}


@pytest.mark.django_db
def test_risk_settings_have_the_documented_defaults():
    risk = RiskSettings.load()
    assert (risk.daily_target_pct, risk.daily_stop_pct, risk.equity_usdt) == (10, 5, 350)
    assert (risk.im_warn_pct, risk.im_reduce_pct, risk.reduce_fraction) == (80, 100, Decimal("0.20"))


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field", "words"), BAD_RISK)
def test_bad_risk_settings_are_refused_by_admin_and_importer(admin_client, change, field, words):
    risk = RiskSettings.load()
    response = admin_client.post(f"/admin/risk/risksettings/{risk.pk}/change/", {**RISK_FORM, **change})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors[field]), errors

    block = {
        key: value if not value[0].isdigit() else float(value) if "." in value else int(value)
        for key, value in {**RISK_FORM, **change}.items()
    }
    with pytest.raises(ConfigFileError) as caught:
        config_import(settings={"risk_management": block})
    assert str(caught.value).startswith("settings.json risk_management") and words in str(caught.value)
    assert RiskSettings.load().daily_target_pct == Decimal("10")


@pytest.mark.django_db
def test_good_risk_settings_save_through_the_admin(admin_client):
    risk = RiskSettings.load()
    response = admin_client.post(
        f"/admin/risk/risksettings/{risk.pk}/change/", {**RISK_FORM, "daily_stop_pct": "3"}
    )
    assert response.status_code == 302
    assert RiskSettings.load().daily_stop_pct == Decimal("3")


@pytest.mark.django_db
def test_settings_singletons_cannot_be_added_twice_or_deleted(admin_client):
    RiskSettings.load()
    assert admin_client.get("/admin/risk/risksettings/add/").status_code == 403
    assert admin_client.get("/admin/risk/risksettings/1/delete/").status_code == 403
    with pytest.raises(ValidationError):
        RiskSettings.load().delete()
    RiskSettings(daily_target_pct=Decimal("12")).save()
    assert RiskSettings.objects.count() == 1 and RiskSettings.load().daily_target_pct == Decimal("12")
    # the list page opens the one row
    assert admin_client.get("/admin/risk/risksettings/").status_code == 302


@pytest.mark.django_db
def test_portfolio_settings_and_allowlist_validate(admin_client):
    with pytest.raises(ConfigFileError, match="trailing_stop_pct"):
        config_import(settings={"portfolio": {"trailing_stop_pct": 0}})
    with pytest.raises(ConfigFileError, match="not a USDT perpetual"):
        config_import(allowlist=["BTC", "ETH/USDT"])
    assert not AllowlistEntry.objects.exists()
    response = admin_client.post(
        "/admin/portfolio/allowlistentry/add/", {"symbol": "ETHUSD", "enabled": "on"}
    )
    assert "not a USDT perpetual" in " ".join(response.context["adminform"].form.errors["symbol"])
    assert PortfolioSettings.load().enabled is False


@pytest.mark.django_db
def test_trading_state_is_read_only_in_the_admin(admin_client):
    state = TradingState.load()
    page = admin_client.get(f"/admin/core/tradingstate/{state.pk}/change/")
    assert page.status_code == 200
    response = admin_client.post(f"/admin/core/tradingstate/{state.pk}/change/", {"panic_locked": ""})
    assert response.status_code == 403


@pytest.mark.django_db
def test_trading_state_says_when_trading_is_allowed():
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    state = TradingState.load()
    assert state.may_trade(now)
    state.disabled_until = now + timedelta(hours=1)
    assert not state.may_trade(now) and state.may_trade(now + timedelta(hours=2))
    state.disabled_until = None
    state.halted = True
    assert not state.may_trade(now)
