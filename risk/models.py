"""Risk settings and the daily PnL record."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import SingletonModel
from trading.models import POSITIVE


class UnknownPositions(models.TextChoices):
    ADOPT = "adopt"
    FLATTEN = "flatten"
    REPORT = "report"


class RiskSettings(SingletonModel):
    """Account guards (the old settings.json "risk_management" block)."""

    daily_target_pct = models.DecimalField(
        "daily target %",
        max_digits=8,
        decimal_places=4,
        default=Decimal("10"),
        validators=[POSITIVE, MaxValueValidator(Decimal("1000"))],
        help_text="Flatten and stop for the day when daily PnL reaches +this %.",
    )
    daily_stop_pct = models.DecimalField(
        "daily stop %",
        max_digits=8,
        decimal_places=4,
        default=Decimal("5"),
        validators=[POSITIVE, MaxValueValidator(Decimal("100"))],
        help_text="Flatten and stop for the day when daily PnL reaches -this %.",
    )
    equity_usdt = models.DecimalField(
        "equity (USDT)",
        max_digits=20,
        decimal_places=4,
        default=Decimal("350"),
        validators=[POSITIVE],
        help_text="Sizing base for %-sized orders, and the daily baseline when the exchange can't be read.",
    )
    im_warn_pct = models.DecimalField(
        "IM warn %",
        max_digits=8,
        decimal_places=4,
        default=Decimal("80"),
        validators=[POSITIVE],
        help_text="Above this initial-margin ratio: alert, and no new liquidation entries.",
    )
    im_reduce_pct = models.DecimalField(
        "IM reduce %",
        max_digits=8,
        decimal_places=4,
        default=Decimal("100"),
        validators=[POSITIVE, MaxValueValidator(Decimal("1000"))],
        help_text="Above this initial-margin ratio: cut exposure by the reduce fraction.",
    )
    reduce_fraction = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.20"),
        validators=[POSITIVE, MaxValueValidator(Decimal("1"))],
        help_text="Share of every position closed in one IM reduction (0.20 = 20 %).",
    )
    reduce_cooldown_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(10), MaxValueValidator(86400)],
        help_text="Minimum time between two IM reductions.",
    )
    max_open_positions = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="The liquidation engine opens no new symbol beyond this many open positions.",
    )
    unknown_positions = models.CharField(
        max_length=8,
        choices=UnknownPositions.choices,
        default=UnknownPositions.ADOPT,
        help_text="A position nobody of ours opened (by hand, or by a run whose journal was lost): "
        "adopt gives it TP/SL if its coin is configured and reports it otherwise; flatten closes it; "
        "report only journals and alerts it, and the TP/SL upkeep leaves it alone.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "risk settings"
        verbose_name_plural = "risk settings"

    def __str__(self):
        return "Risk settings"

    def clean(self):
        if self.im_warn_pct is not None and self.im_reduce_pct is not None:
            if self.im_warn_pct >= self.im_reduce_pct:
                raise ValidationError(
                    {
                        "im_warn_pct": f"IM warn % ({self.im_warn_pct}) must be below "
                        f"IM reduce % ({self.im_reduce_pct})."
                    }
                )


# The account of a day's row written before rows named their account (migration 0003).
UNKNOWN_ACCOUNT = "unknown"


class DailyPnL(models.Model):
    """One UTC day of one account's equity against its baseline (a row of the old pnl_log.csv).

    A day has a row per account it traded: switching from ``sim`` to ``demo`` (or to another
    key) mid-day starts the new account's own baseline, and the old account's row stays as
    history (``risk.daily``). Deposits, withdrawals and transfers are no PnL: the day's net
    transfers (``risk.daily_transfers``) are taken out of it.
    """

    class Outcome(models.TextChoices):
        OPEN = "open"
        TARGET_HIT = "target_hit", "target hit"
        STOP_HIT = "stop_hit", "stop hit"

    class BaselineSource(models.TextChoices):
        EXCHANGE = "exchange", "the day's first equity read"
        FALLBACK = "fallback", "stand-in: RiskSettings.equity_usdt (exchange unreadable)"
        REBASED = "rebased", "the first read after a stand-in"

    date = models.DateField(help_text="UTC date.")
    account = models.CharField(
        max_length=40,
        default=UNKNOWN_ACCOUNT,
        help_text='Exchange mode and Bybit UID of the measured account, e.g. "live:53888001"; '
        '"<mode>:unidentified" until the key could be read; "unknown" on rows older than this field.',
    )
    baseline_equity = models.DecimalField(max_digits=20, decimal_places=4)
    baseline_source = models.CharField(
        max_length=10, choices=BaselineSource.choices, default=BaselineSource.EXCHANGE
    )
    last_equity = models.DecimalField(max_digits=20, decimal_places=4)
    pnl_usdt = models.DecimalField("PnL (USDT)", max_digits=20, decimal_places=4, default=Decimal("0"))
    pnl_pct = models.DecimalField("PnL %", max_digits=10, decimal_places=4, default=Decimal("0"))
    high_equity = models.DecimalField(max_digits=20, decimal_places=4)
    low_equity = models.DecimalField(max_digits=20, decimal_places=4)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.OPEN)
    net_transfers = models.DecimalField(
        "net transfers (USDT)",
        max_digits=20,
        decimal_places=4,
        default=Decimal("0"),
        help_text="Money moved in minus money moved out since the baseline (deposits, withdrawals, "
        "transfers, from Bybit's transaction log): taken out of the PnL, which it is not.",
    )
    transfers = models.JSONField(
        default=list,
        blank=True,
        help_text='The day\'s transfers counted: [{"id", "type", "currency", "amount", "usdt", "time_ms"}].',
    )
    transfers_since_ms = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The baseline's read time (ms): transfers up to it are in the baseline, later ones count.",
    )
    transfers_read_ms = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="When the transaction log was last read (ms); the next read goes on from it.",
    )
    # The daily-limit flatten's record (risk.daily): a decided day whose flat_verified_at is
    # empty is flattened again, from any worker, whatever Redis holds or lost.
    flatten_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Daily-limit flatten runs so far (the first and each retry)."
    )
    flatten_attempted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last daily-limit flatten run began."
    )
    flat_verified_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the exchange showed the account flat after the day's limit; "
        "empty on a decided day: the flatten is retried.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "-updated_at"]
        verbose_name = "daily PnL"
        verbose_name_plural = "daily PnL"
        constraints = [
            models.UniqueConstraint(fields=["date", "account"], name="daily_pnl_one_row_per_account")
        ]

    def __str__(self):
        return f"{self.date} {self.account} {self.pnl_pct}% ({self.outcome})"

    def clean(self):
        if self.baseline_equity is not None and self.baseline_equity <= 0:
            raise ValidationError({"baseline_equity": "Baseline equity must be positive."})


class ClosedPnl(models.Model):
    """One row of Bybit's closed PnL (``/v5/position/closed-pnl``): what one closing order
    realised, attributed to the strategy that owned the position (``risk.closed_pnl``)."""

    class Strategy(models.TextChoices):
        WL = "WL", "liquidation engine"
        PM = "PM", "portfolio momentum"
        MANUAL = "manual", "manual"

    class Side(models.TextChoices):
        LONG = "long"
        SHORT = "short"

    order_id = models.CharField(max_length=64, unique=True, help_text="Bybit's id of the closing order.")
    symbol = models.CharField(max_length=30, db_index=True)
    side = models.CharField(
        max_length=5, choices=Side.choices, help_text="The closed position's side (a Sell closed a long)."
    )
    closed_qty = models.DecimalField(max_digits=24, decimal_places=8)
    avg_entry_price = models.DecimalField(max_digits=24, decimal_places=8)
    avg_exit_price = models.DecimalField(max_digits=24, decimal_places=8)
    closed_pnl = models.DecimalField(
        "closed PnL (USDT)",
        max_digits=24,
        decimal_places=8,
        help_text="Bybit's closedPnl: after the open and the close fee (and funding).",
    )
    open_fee = models.DecimalField(
        max_digits=24,
        decimal_places=8,
        help_text="The entry's share of fees: gross PnL - closed PnL - close fee (funding included).",
    )
    close_fee = models.DecimalField(
        max_digits=24, decimal_places=8, help_text="The closing order's fee for the closed quantity."
    )
    strategy = models.CharField(max_length=6, choices=Strategy.choices, db_index=True)
    order_link_id = models.CharField(
        max_length=36, blank=True, help_text="The closing order's orderLinkId; empty for Bybit's TP/SL."
    )
    closed_at = models.DateTimeField(db_index=True, help_text="Bybit's updatedTime of the row.")
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-closed_at", "-id"]
        verbose_name = "closed PnL"
        verbose_name_plural = "closed PnL"

    def __str__(self):
        return f"{self.closed_at:%Y-%m-%d %H:%M:%S} {self.strategy} {self.symbol} {self.closed_pnl}"
