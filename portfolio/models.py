"""Portfolio-momentum settings and its allowlist."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from trading.models import POSITIVE, SingletonModel, instrument_errors
from trading.validators import validate_linear_usdt_symbol


class PortfolioSettings(SingletonModel):
    """The old settings.json "portfolio" block. PM always trades at 1x leverage."""

    enabled = models.BooleanField(default=False)
    budget_usdt = models.DecimalField(
        "budget (USDT)", max_digits=20, decimal_places=4, default=Decimal("100"), validators=[POSITIVE]
    )
    max_positions = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    scan_interval_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    momentum_lookback_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(720)]
    )
    min_momentum_pct = models.DecimalField(
        "minimum momentum %",
        max_digits=8,
        decimal_places=4,
        default=Decimal("2"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Only symbols up at least this % over the lookback are entered.",
    )
    pyramid_max_adds = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(10)], help_text="Adds to a winner, at most."
    )
    pyramid_step_pct = models.DecimalField(
        "pyramid step %",
        max_digits=8,
        decimal_places=4,
        default=Decimal("3"),
        validators=[POSITIVE, MaxValueValidator(Decimal("100"))],
        help_text="Add again each time price gains this % over the last add.",
    )
    trailing_stop_pct = models.DecimalField(
        "trailing stop %",
        max_digits=8,
        decimal_places=4,
        default=Decimal("5"),
        validators=[POSITIVE, MaxValueValidator(Decimal("50"))],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "portfolio settings"
        verbose_name_plural = "portfolio settings"

    def __str__(self):
        return "Portfolio settings"


class AllowlistEntry(models.Model):
    """A symbol the portfolio strategy may trade (a line of the old allowlist_updated.json)."""

    symbol = models.CharField(max_length=30, unique=True, validators=[validate_linear_usdt_symbol])
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]
        verbose_name = "allowlist entry"
        verbose_name_plural = "allowlist"

    def __str__(self):
        return self.symbol

    def clean(self):
        if self.symbol:
            errors = {k: v for k, v in instrument_errors(self.symbol).items() if k == "symbol"}
            if errors:
                raise ValidationError(errors)
