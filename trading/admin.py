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
    )
    list_editable = ("enabled",)
    list_filter = ("enabled",)
    search_fields = ("symbol",)
    fieldsets = (
        (None, {"fields": ("symbol", "enabled")}),
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
