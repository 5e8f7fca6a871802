"""The kernel's records: the singleton base for settings rows, the trading switches, and the
alert settings."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class SingletonModel(models.Model):
    """A settings row that exists exactly once (pk 1); `load()` creates it with defaults."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(f"{self._meta.verbose_name} cannot be deleted; edit it instead.")

    @classmethod
    def load(cls):
        instance, _ = cls.objects.get_or_create(pk=1)
        return instance


class TradingState(SingletonModel):
    """The switches every strategy checks before it trades.

    The database row is the record; `trading.services` changes it and publishes each
    change on Redis so the engine sees it within milliseconds.
    """

    panic_locked = models.BooleanField(default=False)
    panic_since = models.DateTimeField(null=True, blank=True)
    panic_reason = models.CharField(max_length=200, blank=True)
    disabled_until = models.DateTimeField(
        null=True, blank=True, help_text="Trading is off until this UTC time (daily target/stop)."
    )
    disabled_reason = models.CharField(max_length=200, blank=True)
    halted = models.BooleanField(default=False, help_text="All strategies stopped (/kill) until resumed.")
    halted_since = models.DateTimeField(null=True, blank=True)
    halted_by = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "trading state"
        # The row moved here from `trading`; its table kept its name, so existing
        # databases keep their switches (migrations core 0001 / trading 0002).
        db_table = "trading_tradingstate"

    def __str__(self):
        return "Trading state"

    def is_disabled(self, now) -> bool:
        return self.disabled_until is not None and now < self.disabled_until

    def may_trade(self, now) -> bool:
        return not (self.panic_locked or self.halted or self.is_disabled(now))

    @classmethod
    def current(cls) -> TradingState:
        """The switches, without creating the row: before anyone touched them they are all off."""
        return cls.objects.filter(pk=1).first() or cls()


class AlertSettings(SingletonModel):
    """Which alerts go out, and how many (the policy is in `core.alerts`).

    A switched-off kind is still listed on the dashboard, marked muted; it only skips
    Telegram. The rate limit applies per kind: at most `rate_limit_count` messages per
    `rate_limit_window_s`; the rest fold into one digest at the window's end.
    """

    trades = models.BooleanField(
        "entries and exits", default=True, help_text="WL and PM entries, PM exits, TP/SL closes."
    )
    order_refused = models.BooleanField(default=True, help_text="The exchange refused one of our orders.")
    auth_error = models.BooleanField(
        "authentication errors", default=True, help_text="Bybit refused the API keys (10003/10004)."
    )
    heartbeat_missing = models.BooleanField(
        default=True, help_text="A required process stopped beating, and when it is back."
    )
    feed_silent = models.BooleanField(
        default=True,
        help_text="The liquidation feed sent nothing for feed_silent_seconds, and when it is back.",
    )
    daily_limit = models.BooleanField(
        default=True, help_text="Daily target or stop hit, and the next day's re-enable."
    )
    im = models.BooleanField("IM warn and reduce", default=True)
    panic = models.BooleanField("panic and reset", default=True)
    exchange_unreachable = models.BooleanField(
        default=True, help_text="The exchange could not be reached, and when it is back."
    )
    trade_digest_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(1440)],
        help_text="0: every entry and exit on its own; N: one digest of them every N minutes.",
    )
    rate_limit_count = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="At most this many messages of one kind per window; the rest go into one digest.",
    )
    rate_limit_window_s = models.PositiveIntegerField(
        "rate limit window (s)",
        default=300,
        validators=[MinValueValidator(10), MaxValueValidator(86400)],
        help_text="The rate limit's window; a repeat of the same text inside it is always folded.",
    )
    feed_silent_seconds = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(10), MaxValueValidator(3600)],
        help_text="The liquidation feed counts as silent after this long without a message.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "alert settings"
        verbose_name_plural = "alert settings"

    def __str__(self):
        return "Alert settings"


class AccessRefusal(models.Model):
    """The journal of refused access: who knocked, where, why, how often (`core.access`).

    One row per (channel, reason, source) and hour: a flood from one address or chat adds to
    `count` instead of adding rows. Refusals are also logged (`access_refused ...`).
    """

    class Channel(models.TextChoices):
        HTTP = "http"
        WEBSOCKET = "websocket"
        TELEGRAM = "telegram"

    first_at = models.DateTimeField(db_index=True)
    last_at = models.DateTimeField()
    channel = models.CharField(max_length=10, choices=Channel.choices)
    reason = models.CharField(
        max_length=40,
        help_text="client_network, api_token, api_permission, csrf, telegram_chat, telegram_user",
    )
    source = models.CharField(max_length=100, help_text="The client address, or the Telegram chat:user.")
    target = models.CharField(max_length=200, blank=True, help_text="The first path or command refused.")
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-last_at", "-id"]
        indexes = [models.Index(fields=["channel", "reason", "source", "-last_at"])]

    def __str__(self):
        return f"{self.last_at:%Y-%m-%d %H:%M:%S} {self.channel} {self.reason} {self.source} x{self.count}"
