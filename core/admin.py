from django.contrib import admin

from core.admin_mixins import SingletonAdmin
from core.models import TradingState


@admin.register(TradingState)
class TradingStateAdmin(SingletonAdmin, admin.ModelAdmin):
    """Shown, not edited: locks change through the panic, risk and kill services, which
    check the exchange (a panic reset needs a flat account) and notify the engine."""

    readonly_fields = [f.name for f in TradingState._meta.fields if f.name != "id"]

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD")
