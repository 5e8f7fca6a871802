from django.contrib import admin

from core.admin_mixins import ReadOnlyAdmin
from trading.models import Coin, Decision, Instrument


@admin.register(Coin)
class CoinAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "enabled",
        "long_offset_pct",
        "short_offset_pct",
        "min_liquidation_usdt",
        "order_size_usdt",
        "order_size_pct_equity",
        "leverage",
        "take_profit_pct",
        "stop_loss_pct",
        "vwap_window_minutes",
        "demo",
    )
    list_editable = ("enabled",)
    list_filter = ("enabled", "demo")
    readonly_fields = ("demo",)
    search_fields = ("symbol",)
    fieldsets = (
        (None, {"fields": ("symbol", "enabled", "demo")}),
        (
            "Entry",
            {
                "fields": (
                    "long_offset_pct",
                    "short_offset_pct",
                    "min_liquidation_usdt",
                    "vwap_window_minutes",
                    "entry_cooldown_seconds",
                    "max_event_age_ms",
                )
            },
        ),
        ("Size", {"fields": ("order_size_usdt", "order_size_pct_equity", "leverage")}),
        ("Exit", {"fields": ("take_profit_pct", "stop_loss_pct")}),
    )

    def save_model(self, request, obj, form, change):
        # Switching a demo coin on by hand (its form or the list's checkbox) makes it the
        # owner's: a start outside sim no longer disables it.
        if obj.enabled and "enabled" in form.changed_data:
            obj.demo = False
        super().save_model(request, obj, form, change)


@admin.register(Instrument)
class InstrumentAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = (
        "symbol",
        "status",
        "qty_step",
        "min_order_qty",
        "min_notional_value",
        "tick_size",
        "max_leverage",
        "updated_at",
    )
    search_fields = ("symbol",)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("created_at", "strategy", "symbol", "action", "outcome", "reason_code", "order_link_id")
    list_filter = ("strategy", "outcome", "reason_code")
    search_fields = ("symbol", "order_link_id")
    date_hierarchy = "created_at"
