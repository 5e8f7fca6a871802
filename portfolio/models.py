"""Portfolio-momentum settings and its allowlist."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from core.models import SingletonModel
from trading.claims import coin_claim
from trading.models import POSITIVE, instrument_errors
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
            if not errors and self.enabled:
                # One symbol, one strategy (trading.claims): not also an enabled liquidation coin.
                claim = coin_claim(self.symbol)
                if claim:
                    errors["symbol"] = claim
            if errors:
                raise ValidationError(errors)


def allowlist_claim(symbol: str) -> str | None:
    """The portfolio's claim on a symbol (``trading.claims``): an enabled allowlist entry."""
    if not AllowlistEntry.objects.filter(symbol=symbol, enabled=True).exists():
        return None
    return (
        f"{symbol} is an enabled entry of the portfolio allowlist. A symbol is traded by one "
        "strategy only: disable or remove the allowlist entry first, or keep this coin disabled."
    )


class PortfolioState(SingletonModel):
    """The strategy's own bookkeeping: when the last scan ran (the claim of the next one)."""

    last_scan_at = models.DateTimeField(null=True, blank=True)
    last_scan_key = models.CharField(max_length=20, blank=True, help_text="The scan's minute, UTC.")
    allowlist_seen = models.JSONField(
        default=list,
        blank=True,
        help_text="The enabled allowlist at the last scan: the next one journals changes.",
    )

    class Meta:
        verbose_name = "portfolio state"
        verbose_name_plural = "portfolio state"

    def __str__(self):
        return "Portfolio state"


class PortfolioPositionQuerySet(models.QuerySet):
    def active(self):
        """Positions PM holds or is opening or closing: their symbols are PM-managed."""
        return self.filter(status__in=PortfolioPosition.ACTIVE_STATUSES)


class PortfolioPosition(models.Model):
    """One long the portfolio strategy opened, from its entry to its exit.

    ``qty`` and ``cost_usdt`` are PM's own share (the sum of its filled legs), never
    read back from the exchange's position: PM only ever closes what it bought.
    ``cost_usdt`` is the margin those legs committed at 1x (qty x fill price); the
    budget counts it.
    """

    class Status(models.TextChoices):
        OPENING = "opening"  # entry decided, order sent or about to be
        OPEN = "open"
        CLOSING = "closing"  # exit decided, not yet verified flat
        CLOSED = "closed"
        FAILED = "failed"  # the entry never filled: nothing was bought

    ACTIVE_STATUSES = (Status.OPENING, Status.OPEN, Status.CLOSING)

    symbol = models.CharField(max_length=30, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPENING)
    qty = models.DecimalField(max_digits=30, decimal_places=12, default=Decimal("0"))
    cost_usdt = models.DecimalField("cost (USDT)", max_digits=24, decimal_places=8, default=Decimal("0"))
    entry_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    adds_made = models.PositiveSmallIntegerField(
        default=0, help_text="Pyramid adds sent (filled or pending)."
    )
    last_add_price = models.DecimalField(
        max_digits=30, decimal_places=12, null=True, blank=True, help_text="Fill price of the newest leg."
    )
    high_water_price = models.DecimalField(
        max_digits=30, decimal_places=12, null=True, blank=True, help_text="Highest last price since entry."
    )
    momentum_pct = models.DecimalField(
        "momentum % at entry", max_digits=20, decimal_places=8, null=True, blank=True
    )
    exit_reason = models.CharField(max_length=40, blank=True)
    exit_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    exit_attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PortfolioPositionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "portfolio position"
        constraints = [
            # One live PM position per symbol: a second entry on a held symbol fails here.
            models.UniqueConstraint(
                fields=["symbol"],
                condition=models.Q(status__in=["opening", "open", "closing"]),
                name="portfolio_one_active_position_per_symbol",
            )
        ]

    def __str__(self):
        return f"{self.symbol} {self.status} {self.qty}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class PortfolioOrder(models.Model):
    """One order PM sent (or is about to send), by its deterministic ``orderLinkId``.

    The row is written before the order goes out; its unique ``order_link_id`` is what
    makes a second copy impossible, and a row left ``pending`` (a worker died, the venue
    did not answer) is settled later by looking the order up on the exchange.
    """

    class Leg(models.TextChoices):
        ENTRY = "entry"
        ADD = "add"
        EXIT = "exit"

    class Status(models.TextChoices):
        PENDING = "pending"  # sent or about to be; outcome not yet known
        FILLED = "filled"
        FAILED = "failed"  # refused, or never reached the venue: nothing traded

    position = models.ForeignKey(PortfolioPosition, on_delete=models.PROTECT, related_name="orders")
    leg = models.CharField(max_length=10, choices=Leg.choices)
    order_link_id = models.CharField(max_length=36, unique=True)
    qty = models.DecimalField(max_digits=30, decimal_places=12)
    reference_price = models.DecimalField(max_digits=30, decimal_places=12)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    filled_qty = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    fill_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "portfolio order"

    def __str__(self):
        return f"{self.order_link_id} {self.leg} {self.status}"
