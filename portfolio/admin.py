from django.contrib import admin

from core.admin_mixins import ReadOnlyAdmin, SingletonAdmin
from portfolio.models import (
    AllowlistEntry,
    PortfolioOrder,
    PortfolioPosition,
    PortfolioSettings,
    PortfolioState,
)


@admin.register(PortfolioSettings)
class PortfolioSettingsAdmin(SingletonAdmin, admin.ModelAdmin):
    pass


@admin.register(AllowlistEntry)
class AllowlistEntryAdmin(admin.ModelAdmin):
    list_display = ("symbol", "enabled", "note", "added_at")
    list_editable = ("enabled",)
    list_filter = ("enabled",)
    search_fields = ("symbol", "note")


class PortfolioOrderInline(admin.TabularInline):
    model = PortfolioOrder
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    fields = (
        "leg",
        "order_link_id",
        "qty",
        "reference_price",
        "status",
        "filled_qty",
        "fill_price",
        "error",
        "created_at",
        "settled_at",
    )


@admin.register(PortfolioPosition)
class PortfolioPositionAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Written by the strategy only: what it holds, held, and why it left."""

    list_display = (
        "symbol",
        "status",
        "qty",
        "cost_usdt",
        "entry_price",
        "adds_made",
        "last_add_price",
        "high_water_price",
        "exit_reason",
        "exit_price",
        "opened_at",
        "closed_at",
    )
    list_filter = ("status", "exit_reason")
    search_fields = ("symbol",)
    date_hierarchy = "created_at"
    inlines = [PortfolioOrderInline]


@admin.register(PortfolioOrder)
class PortfolioOrderAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("order_link_id", "leg", "position", "qty", "status", "fill_price", "created_at")
    list_filter = ("leg", "status")
    search_fields = ("order_link_id", "position__symbol")


@admin.register(PortfolioState)
class PortfolioStateAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("last_scan_at", "last_scan_key")
