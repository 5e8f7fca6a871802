import csv

from django.contrib import admin
from django.http import HttpResponse

from controlpanel.admin_mixins import ReadOnlyAdmin, SingletonAdmin
from risk.models import DailyPnL, RiskSettings

PNL_LOG_COLUMNS = (
    "date",
    "baseline_equity",
    "last_equity",
    "pnl_usdt",
    "pnl_pct",
    "high_equity",
    "low_equity",
    "outcome",
)


@admin.register(RiskSettings)
class RiskSettingsAdmin(SingletonAdmin, admin.ModelAdmin):
    fieldsets = (
        ("Daily control", {"fields": ("daily_target_pct", "daily_stop_pct", "equity_usdt")}),
        (
            "Initial margin",
            {"fields": ("im_warn_pct", "im_reduce_pct", "reduce_fraction", "reduce_cooldown_seconds")},
        ),
        ("Exposure", {"fields": ("max_open_positions",)}),
    )


@admin.register(DailyPnL)
class DailyPnLAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = PNL_LOG_COLUMNS
    list_filter = ("outcome",)
    date_hierarchy = "date"
    actions = ["export_pnl_log_csv"]

    @admin.action(description="Export selected days as pnl_log.csv")
    def export_pnl_log_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="pnl_log.csv"'
        writer = csv.writer(response)
        writer.writerow(PNL_LOG_COLUMNS)
        for day in queryset.order_by("date"):
            writer.writerow([getattr(day, column) for column in PNL_LOG_COLUMNS])
        return response
