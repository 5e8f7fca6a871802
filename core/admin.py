from django.contrib import admin

from core.admin_mixins import SingletonAdmin
from core.models import AccessRefusal, AlertSettings, TradingState


@admin.register(TradingState)
class TradingStateAdmin(SingletonAdmin, admin.ModelAdmin):
    """Shown, not edited: locks change through the panic, risk and kill services, which
    check the exchange (a panic reset needs a flat account) and notify the engine."""

    readonly_fields = [f.name for f in TradingState._meta.fields if f.name != "id"]

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD")


@admin.register(AlertSettings)
class AlertSettingsAdmin(SingletonAdmin, admin.ModelAdmin):
    fieldsets = (
        (
            "Send to Telegram",
            {
                "fields": (
                    "trades",
                    "order_refused",
                    "auth_error",
                    "heartbeat_missing",
                    "feed_silent",
                    "daily_limit",
                    "im",
                    "panic",
                    "exchange_unreachable",
                )
            },
        ),
        (
            "Digests and rate limit",
            {"fields": ("trade_digest_minutes", "rate_limit_count", "rate_limit_window_s")},
        ),
        ("Checks", {"fields": ("feed_silent_seconds",)}),
    )


@admin.register(AccessRefusal)
class AccessRefusalAdmin(admin.ModelAdmin):
    """Read only: the edges write it (`core.access`)."""

    list_display = ("last_at", "channel", "reason", "source", "target", "count")
    list_filter = ("channel", "reason")
    readonly_fields = [f.name for f in AccessRefusal._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD")
