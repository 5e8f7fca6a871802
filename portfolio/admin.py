from django.contrib import admin

from controlpanel.admin_mixins import SingletonAdmin
from portfolio.models import AllowlistEntry, PortfolioSettings


@admin.register(PortfolioSettings)
class PortfolioSettingsAdmin(SingletonAdmin, admin.ModelAdmin):
    pass


@admin.register(AllowlistEntry)
class AllowlistEntryAdmin(admin.ModelAdmin):
    list_display = ("symbol", "enabled", "note", "added_at")
    list_editable = ("enabled",)
    list_filter = ("enabled",)
    search_fields = ("symbol", "note")
