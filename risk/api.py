from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from core.api import singleton_settings_view
from core.serializers import CleanModelSerializer
from risk.models import DailyPnL, RiskSettings


class RiskSettingsSerializer(CleanModelSerializer):
    class Meta:
        model = RiskSettings
        exclude = ["id"]
        read_only_fields = ["updated_at"]


class DailyPnLSerializer(CleanModelSerializer):
    class Meta:
        model = DailyPnL
        exclude = ["id"]


risk_settings = singleton_settings_view(
    RiskSettingsSerializer,
    doc="The account guards. PATCH changes some fields; every rule of the admin applies.",
)


@extend_schema(responses=DailyPnLSerializer(many=True))
@api_view(["GET"])
def daily_pnl(request):
    """Daily PnL rows, newest first (at most a year)."""
    return Response(DailyPnLSerializer(DailyPnL.objects.all()[:366], many=True).data)
