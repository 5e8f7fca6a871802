from django.contrib import admin
from django.http import HttpResponse

from core.admin_mixins import ReadOnlyAdmin, SingletonAdmin
from risk.models import ClosedPnl, DailyPnL, RiskSettings
from risk.pnl_log import PNL_LOG_COLUMNS, pnl_log_write


@admin.register(RiskSettings)
class RiskSettingsAdmin(SingletonAdmin, admin.ModelAdmin):
    fieldsets = (
        ("Daily control", {"fields": ("daily_target_pct", "daily_stop_pct", "equity_usdt")}),
        (
            "Initial margin",
            {"fields": ("im_warn_pct", "im_reduce_pct", "reduce_fraction", "reduce_cooldown_seconds")},
        ),
        ("Exposure", {"fields": ("max_open_positions", "unknown_positions")}),
    )


@admin.register(DailyPnL)
class DailyPnLAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = PNL_LOG_COLUMNS
    list_filter = ("outcome", "account")
    date_hierarchy = "date"
    actions = ["export_pnl_log_csv"]

    @admin.action(description="Export selected days as pnl_log.csv")
    def export_pnl_log_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="pnl_log.csv"'
        pnl_log_write(out=response, rows=queryset)
        return response


@admin.register(ClosedPnl)
class ClosedPnlAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = (
        "closed_at",
        "strategy",
        "symbol",
        "side",
        "closed_qty",
        "avg_entry_price",
        "avg_exit_price",
        "closed_pnl",
        "open_fee",
        "close_fee",
        "order_link_id",
    )
    list_filter = ("strategy", "side")
    search_fields = ("symbol", "order_id", "order_link_id")
    date_hierarchy = "closed_at"
