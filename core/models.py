"""The kernel's records: the singleton base for settings rows, and the trading switches."""

from __future__ import annotations

from django.core.exceptions import ValidationError
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
