from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from controlpanel.serializers import CleanModelSerializer
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


@extend_schema(request=RiskSettingsSerializer, responses=RiskSettingsSerializer)
@api_view(["GET", "PUT", "PATCH"])
def risk_settings(request):
    """The account guards. PATCH changes some fields; every rule of the admin applies."""
    instance = RiskSettings.load()
    if request.method == "GET":
        return Response(RiskSettingsSerializer(instance).data)
    serializer = RiskSettingsSerializer(instance, data=request.data, partial=request.method == "PATCH")
    serializer.is_valid(raise_exception=True)
    serializer.save()
    return Response(serializer.data)


@extend_schema(responses=DailyPnLSerializer(many=True))
@api_view(["GET"])
def daily_pnl(request):
    """Daily PnL rows, newest first (at most a year)."""
    return Response(DailyPnLSerializer(DailyPnL.objects.all()[:366], many=True).data)
