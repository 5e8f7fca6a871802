"""Import and export the liquidation-hunter bots' configuration files.

Formats (documented in docs/config-files.md):
- coins.json: a list of coin objects (`symbol` as BTC or BTCUSDT, leverage,
  take_profit_percent, stop_loss_percent, long_vwap_offset, short_vwap_offset,
  lick_value, order_size_usdt | order_size_percent_balance, optional enabled,
  vwap_window_minutes, entry_cooldown_seconds, max_event_age_ms). Unknown fields are reported and ignored.
- settings.json: {"risk_management": {...}, "portfolio": {...}}.
- allowlist_updated.json: a list of symbols, or {"symbols": [...]}.

An import validates every entry through the models' own validation and saves in
one transaction: one bad entry, and nothing is saved; the error names the file,
the entry and the field. A symbol may not end up both an enabled coin and an enabled
allowlist entry (``trading.claims``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from portfolio.models import AllowlistEntry, PortfolioSettings, allowlist_claim
from risk.models import RiskSettings
from trading.claims import claims_deferred, coin_claim
from trading.models import Coin
from trading.validators import normalise_symbol

# coins.json key -> Coin field. Decimal-valued keys become Decimal via str() so 0.1
# in the JSON is exactly 0.1, never the float's binary approximation.
COIN_FIELDS = {
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
    "max_event_age_ms": "max_event_age_ms",  # optional: older files import with the default
}
COIN_REQUIRED = (
    "symbol",
    "leverage",
    "take_profit_percent",
    "stop_loss_percent",
    "long_vwap_offset",
    "short_vwap_offset",
    "lick_value",
)

# settings.json keys are the model field names themselves.
RISK_FIELDS = (
    "daily_target_pct",
    "daily_stop_pct",
    "equity_usdt",
    "im_warn_pct",
    "im_reduce_pct",
    "reduce_fraction",
    "reduce_cooldown_seconds",
    "max_open_positions",
    "unknown_positions",
)
PORTFOLIO_FIELDS = (
    "enabled",
    "budget_usdt",
    "max_positions",
    "scan_interval_minutes",
    "momentum_lookback_hours",
    "min_momentum_pct",
    "pyramid_max_adds",
    "pyramid_step_pct",
    "trailing_stop_pct",
)


class ConfigFileError(Exception):
    """A file that cannot be imported; nothing was saved."""


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for label, items in (("created", self.created), ("updated", self.updated), ("removed", self.removed)):
            if items:
                out.append(f"{label}: {', '.join(items)}")
        out += [f"warning: {w}" for w in self.warnings]
        return out or ["nothing to change"]


def _field_value(model, name: str, raw):
    """Turn a JSON value into what the model field holds, or raise ValueError."""
    model_field = model._meta.get_field(name)
    if raw is None:
        return None
    internal = model_field.get_internal_type()
    if internal == "DecimalField":
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise ValueError(f"expected a number, got {raw!r}")
        try:
            return Decimal(str(raw).strip())
        except InvalidOperation:
            raise ValueError(f"expected a number, got {raw!r}") from None
    if internal == "BooleanField":
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, got {raw!r}")
        return raw
    if internal in ("PositiveSmallIntegerField", "PositiveIntegerField", "IntegerField"):
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError(f"expected a whole number, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"expected a whole number, got {raw!r}") from None
    if not isinstance(raw, str):
        raise ValueError(f"expected text, got {raw!r}")
    return raw


def _validation_text(error: ValidationError, names: dict[str, str]) -> str:
    """`field: message` pairs, with our field names mapped back to the file's keys."""
    parts = []
    for model_field, messages in error.message_dict.items():
        key = names.get(model_field, model_field)
        parts.append(f"{key}: {' '.join(messages)}")
    return "; ".join(parts)


def _apply(instance, values: dict, where: str, names: dict[str, str]):
    for name, raw in values.items():
        try:
            setattr(instance, name, _field_value(type(instance), name, raw))
        except ValueError as error:
            raise ConfigFileError(f"{where}: {names.get(name, name)}: {error}") from None
    try:
        instance.full_clean()
    except ValidationError as error:
        raise ConfigFileError(f"{where}: {_validation_text(error, names)}") from None


def _import_coins(data, report: ImportReport, *, replace: bool, demo: bool) -> None:
    if not isinstance(data, list):
        raise ConfigFileError("coins.json: expected a JSON list of coin objects.")
    names = {model_field: key for key, model_field in COIN_FIELDS.items()}
    seen = set()
    for index, entry in enumerate(data, start=1):
        where = f"coins.json entry {index}"
        if not isinstance(entry, dict):
            raise ConfigFileError(f"{where}: expected an object, got {entry!r}.")
        raw_symbol = entry.get("symbol")
        if not isinstance(raw_symbol, str) or not raw_symbol.strip():
            raise ConfigFileError(f'{where}: symbol: required (e.g. "BTC" or "BTCUSDT").')
        symbol = normalise_symbol(raw_symbol)
        where = f"coins.json entry {index} ({symbol})"
        if symbol in seen:
            raise ConfigFileError(f"{where}: symbol: listed twice.")
        seen.add(symbol)
        missing = [key for key in COIN_REQUIRED if entry.get(key) is None]
        if missing:
            raise ConfigFileError(f"{where}: missing {', '.join(missing)}.")
        unknown = sorted(set(entry) - set(COIN_FIELDS))
        if unknown:
            report.warnings.append(f"{where}: ignored unknown fields {', '.join(unknown)}")
        coin = Coin.objects.filter(symbol=symbol).first()
        is_new = coin is None
        coin = coin or Coin(symbol=symbol)
        values = {COIN_FIELDS[key]: entry[key] for key in COIN_FIELDS if key in entry and key != "symbol"}
        # The file states one size; the other must be cleared, or an old value would linger.
        values.setdefault("order_size_usdt", None)
        values.setdefault("order_size_pct_equity", None)
        values.setdefault("enabled", True)
        _apply(coin, values, where, names)
        coin.demo = demo  # a coin from the owner's file is theirs, even one the demo had
        coin.save()
        (report.created if is_new else report.updated).append(f"coin {symbol}")
    if replace:
        for coin in Coin.objects.exclude(symbol__in=seen):
            report.removed.append(f"coin {coin.symbol}")
            coin.delete()


def _import_singleton(model, block, section: str, fields: tuple[str, ...], report: ImportReport) -> None:
    where = f"settings.json {section}"
    if not isinstance(block, dict):
        raise ConfigFileError(f"{where}: expected an object.")
    unknown = sorted(set(block) - set(fields))
    if unknown:
        report.warnings.append(f"{where}: ignored unknown fields {', '.join(unknown)}")
    instance = model.load()
    _apply(instance, {name: block[name] for name in fields if name in block}, where, {})
    instance.save()
    report.updated.append(section)


def _import_settings(data, report: ImportReport) -> None:
    if not isinstance(data, dict):
        raise ConfigFileError("settings.json: expected a JSON object.")
    unknown = sorted(set(data) - {"risk_management", "portfolio"})
    if unknown:
        report.warnings.append(f"settings.json: ignored unknown sections {', '.join(unknown)}")
    if "risk_management" in data:
        _import_singleton(RiskSettings, data["risk_management"], "risk_management", RISK_FIELDS, report)
    if "portfolio" in data:
        _import_singleton(PortfolioSettings, data["portfolio"], "portfolio", PORTFOLIO_FIELDS, report)


def _allowlist_symbols(value, key: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigFileError(f"allowlist_updated.json: {key}: expected a list of symbols.")
    symbols = []
    for index, raw in enumerate(value, start=1):
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigFileError(
                f"allowlist_updated.json {key} entry {index}: expected a symbol, got {raw!r}."
            )
        symbols.append(normalise_symbol(raw))
    return symbols


def _import_allowlist(data, report: ImportReport, *, replace: bool) -> None:
    if isinstance(data, list):
        data = {"symbols": data}
    if not isinstance(data, dict) or "symbols" not in data:
        raise ConfigFileError('allowlist_updated.json: expected a list of symbols or {"symbols": [...]}.')
    unknown = sorted(set(data) - {"symbols", "disabled", "notes"})
    if unknown:
        report.warnings.append(f"allowlist_updated.json: ignored unknown fields {', '.join(unknown)}")
    notes = data.get("notes") or {}
    if not isinstance(notes, dict):
        raise ConfigFileError("allowlist_updated.json: notes: expected an object of symbol -> text.")
    wanted = {symbol: True for symbol in _allowlist_symbols(data["symbols"], "symbols")}
    # The old bots wrote duplicates; one entry is what they meant. "disabled" is ours:
    # it keeps switched-off symbols through an export/import round trip.
    wanted.update({symbol: False for symbol in _allowlist_symbols(data.get("disabled", []), "disabled")})
    for symbol, enabled in wanted.items():
        where = f"allowlist_updated.json ({symbol})"
        entry = AllowlistEntry.objects.filter(symbol=symbol).first()
        is_new = entry is None
        entry = entry or AllowlistEntry(symbol=symbol)
        values = {"enabled": enabled}
        note = notes.get(symbol, notes.get(symbol.removesuffix("USDT")))
        if note is not None:
            values["note"] = note
        _apply(entry, values, where, {})
        entry.save()
        (report.created if is_new else report.updated).append(f"allowlist {symbol}")
    if replace:
        for entry in AllowlistEntry.objects.exclude(symbol__in=wanted):
            report.removed.append(f"allowlist {entry.symbol}")
            entry.delete()


def config_import(
    *, coins=None, settings=None, allowlist=None, replace: bool = False, demo: bool = False
) -> ImportReport:
    """Import parsed JSON documents (any may be None). All or nothing.

    `replace` also removes coins and allowlist symbols that the given files do not list.
    `demo` marks the coins as the demo configuration's (`load_demo_config`): outside sim
    they start disabled.
    """
    report = ImportReport()
    with transaction.atomic():
        # One symbol, one strategy is checked once every file is written (trading.claims), so
        # one import may move a symbol from the coins to the allowlist or back.
        with claims_deferred():
            if coins is not None:
                _import_coins(coins, report, replace=replace, demo=demo)
            if settings is not None:
                _import_settings(settings, report)
            if allowlist is not None:
                _import_allowlist(allowlist, report, replace=replace)
        _check_one_strategy_per_symbol(allowlist_given=allowlist is not None)
    return report


def _check_one_strategy_per_symbol(*, allowlist_given: bool) -> None:
    """Refuse the import (all of it) if a symbol ends up an enabled coin and an enabled allowlist entry."""
    coins = set(Coin.objects.filter(enabled=True).values_list("symbol", flat=True))
    listed = set(AllowlistEntry.objects.filter(enabled=True).values_list("symbol", flat=True))
    both = sorted(coins & listed)
    if not both:
        return
    symbol = both[0]
    if allowlist_given:
        where, message = f"allowlist_updated.json ({symbol})", coin_claim(symbol)
    else:
        where, message = f"coins.json ({symbol})", allowlist_claim(symbol)
    also = f" Also both a coin and on the allowlist: {', '.join(both[1:])}." if len(both) > 1 else ""
    raise ConfigFileError(f"{where}: symbol: {message}{also}")


def _json_number(value: Decimal | None):
    """Decimals go out as JSON numbers without trailing zeros (10.0000 -> 10, 0.2000 -> 0.2)."""
    if value is None:
        return None
    normal = value.normalize()
    return int(normal) if normal == normal.to_integral_value() else float(str(normal))


def _export_value(instance, name: str):
    value = getattr(instance, name)
    return _json_number(value) if isinstance(value, Decimal) else value


def config_export() -> dict[str, object]:
    """The three documents, in the formats config_import reads."""
    coins = []
    for coin in Coin.objects.order_by("symbol"):
        entry = {}
        for key, name in COIN_FIELDS.items():
            value = _export_value(coin, name)
            if value is not None:
                entry[key] = value
        coins.append(entry)
    risk, portfolio = RiskSettings.load(), PortfolioSettings.load()
    settings = {
        "risk_management": {name: _export_value(risk, name) for name in RISK_FIELDS},
        "portfolio": {name: _export_value(portfolio, name) for name in PORTFOLIO_FIELDS},
    }
    entries = list(AllowlistEntry.objects.order_by("symbol"))
    allowlist = {
        "symbols": [entry.symbol for entry in entries if entry.enabled],
        "disabled": [entry.symbol for entry in entries if not entry.enabled],
        "notes": {entry.symbol: entry.note for entry in entries if entry.note},
    }
    return {"coins.json": coins, "settings.json": settings, "allowlist_updated.json": allowlist}
