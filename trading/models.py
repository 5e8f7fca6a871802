"""The trading records: instruments, per-coin settings, the shared trading state and
the decision journal. Validation lives in `clean()` so the admin, the API and the
importers refuse the same bad input with the same message."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from trading.claims import symbol_claims
from trading.validators import validate_linear_usdt_symbol

POSITIVE = MinValueValidator(Decimal("0.000001"))


class Instrument(models.Model):
    """A Bybit linear instrument's trading filters, cached from /v5/market/instruments-info.

    The gateway refreshes this at start and daily; coin validation reads it.
    """

    symbol = models.CharField(max_length=40, unique=True)
    status = models.CharField(max_length=20, default="Trading")
    qty_step = models.DecimalField(max_digits=30, decimal_places=12)
    min_order_qty = models.DecimalField(max_digits=30, decimal_places=12)
    max_order_qty = models.DecimalField(max_digits=30, decimal_places=12)
    max_market_order_qty = models.DecimalField(max_digits=30, decimal_places=12)
    min_notional_value = models.DecimalField(max_digits=30, decimal_places=12)
    tick_size = models.DecimalField(max_digits=30, decimal_places=12)
    max_leverage = models.DecimalField(max_digits=10, decimal_places=2)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["symbol"]

    def __str__(self):
        return self.symbol


class Coin(models.Model):
    """Liquidation-engine settings for one symbol (a row of the old coins.json)."""

    symbol = models.CharField(max_length=30, unique=True, validators=[validate_linear_usdt_symbol])
    enabled = models.BooleanField(default=True)
    long_offset_pct = models.DecimalField(
        "long offset %",
        max_digits=8,
        decimal_places=4,
        validators=[POSITIVE, MaxValueValidator(Decimal("50"))],
        help_text="Enter long when price is this % below VWAP after a long liquidation.",
    )
    short_offset_pct = models.DecimalField(
        "short offset %",
        max_digits=8,
        decimal_places=4,
        validators=[POSITIVE, MaxValueValidator(Decimal("50"))],
        help_text="Enter short when price is this % above VWAP after a short liquidation.",
    )
    min_liquidation_usdt = models.DecimalField(
        "minimum liquidation (USDT)",
        max_digits=20,
        decimal_places=2,
        validators=[POSITIVE],
        help_text="Ignore liquidations smaller than this notional (the old lick_value).",
    )
    order_size_usdt = models.DecimalField(
        "order size (USDT margin)",
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[POSITIVE],
        help_text="Margin per entry in USDT; notional = margin x leverage. Set this or the % below.",
    )
    order_size_pct_equity = models.DecimalField(
        "order size (% of equity)",
        max_digits=8,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[POSITIVE, MaxValueValidator(Decimal("100"))],
        help_text="Margin per entry as % of the risk settings' equity. Set this or the USDT size.",
    )
    leverage = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100)])
    take_profit_pct = models.DecimalField(
        "take profit %",
        max_digits=8,
        decimal_places=4,
        validators=[POSITIVE, MaxValueValidator(Decimal("100"))],
        help_text="Price move from entry, in %.",
    )
    stop_loss_pct = models.DecimalField(
        "stop loss %",
        max_digits=8,
        decimal_places=4,
        validators=[POSITIVE, MaxValueValidator(Decimal("100"))],
        help_text="Price move from entry, in %; must trigger before liquidation (below 100 / leverage).",
    )
    vwap_window_minutes = models.PositiveIntegerField(
        "VWAP window (minutes)", default=60, validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    entry_cooldown_seconds = models.PositiveIntegerField(
        default=60,
        validators=[MaxValueValidator(86400)],
        help_text="Minimum time between two entries on this symbol.",
    )
    max_event_age_ms = models.PositiveIntegerField(
        "maximum event age (ms)",
        default=2000,
        validators=[MinValueValidator(100), MaxValueValidator(60_000)],
        help_text=(
            "Skip a liquidation older than this when the engine sees it (exchange time to our clock): "
            "after a feed stall the backlog must not trade on old prices."
        ),
    )
    demo = models.BooleanField(
        "demo coin",
        default=False,
        help_text=(
            "From make run's demo configuration (10 USDT margin at 10x, 2 % stop), for the simulator. "
            "Outside sim a demo coin starts off; enabling it (admin, API) or importing it makes it yours."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self):
        return self.symbol

    def clean(self):
        errors: dict[str, list[str]] = {}
        if (self.order_size_usdt is None) == (self.order_size_pct_equity is None):
            errors.setdefault("order_size_usdt", []).append(
                "Set exactly one of order size (USDT) and order size (% of equity)."
            )
        if self.leverage and self.stop_loss_pct is not None:
            # At leverage L a price move of about 100/L % wipes the margin: a stop
            # further away than that would never fire before liquidation.
            liquidation_move = Decimal(100) / Decimal(self.leverage)
            if self.stop_loss_pct >= liquidation_move:
                errors.setdefault("stop_loss_pct", []).append(
                    f"Stop loss {self.stop_loss_pct}% is at or beyond liquidation at {self.leverage}x "
                    f"(about {liquidation_move.normalize()}%); lower it or the leverage."
                )
        if self.symbol:
            for field, message in instrument_errors(self.symbol, self.leverage).items():
                errors.setdefault(field, []).append(message)
        if self.symbol and self.enabled:
            # One symbol, one strategy (trading.claims): e.g. not also on the portfolio's allowlist.
            for message in symbol_claims(self.symbol):
                errors.setdefault("symbol", []).append(message)
        if errors:
            raise ValidationError(errors)


def instrument_errors(symbol: str, leverage: int | None = None) -> dict[str, str]:
    """Check a symbol (and leverage) against the cached instrument list, when one is loaded.

    Before the first instrument refresh the table is empty and only the symbol's
    format can be checked; the engine still refuses unknown instruments at decision time.
    """
    if not Instrument.objects.exists():
        return {}
    instrument = Instrument.objects.filter(symbol=symbol).first()
    if instrument is None or instrument.status != "Trading":
        return {"symbol": f"{symbol} is not a tradable linear USDT perpetual on Bybit."}
    if leverage and Decimal(leverage) > instrument.max_leverage:
        return {"leverage": f"{symbol} allows at most {instrument.max_leverage.normalize()}x leverage."}
    return {}


class Decision(models.Model):
    """The journal: one row per decision any strategy or guard made, taken or not."""

    class Strategy(models.TextChoices):
        LIQUIDATION = "wl", "liquidation engine"
        PORTFOLIO = "pm", "portfolio momentum"
        RISK = "risk", "risk manager"
        PANIC = "panic", "panic"
        MANUAL = "manual", "manual"

    class Outcome(models.TextChoices):
        TAKEN = "taken"
        SKIPPED = "skipped"
        FAILED = "failed"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    strategy = models.CharField(max_length=10, choices=Strategy.choices)
    symbol = models.CharField(max_length=30, blank=True, db_index=True)
    action = models.CharField(max_length=40, help_text="open_long, open_short, close, reduce, flatten, ...")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason_code = models.CharField(max_length=60, blank=True)
    details = models.JSONField(default=dict, blank=True)
    order_link_id = models.CharField(max_length=36, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["strategy", "outcome", "-created_at"])]

    def __str__(self):
        return (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.strategy} {self.symbol} {self.action} {self.outcome}"
        )
