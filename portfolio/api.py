from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from controlpanel.serializers import CleanModelSerializer
from portfolio.models import AllowlistEntry, PortfolioSettings


class PortfolioSettingsSerializer(CleanModelSerializer):
    class Meta:
        model = PortfolioSettings
        exclude = ["id"]
        read_only_fields = ["updated_at"]


class AllowlistEntrySerializer(CleanModelSerializer):
    class Meta:
        model = AllowlistEntry
        fields = ["id", "symbol", "enabled", "note", "added_at"]
        read_only_fields = ["id", "added_at"]


class AllowlistViewSet(viewsets.ModelViewSet):
    """Symbols the portfolio strategy may trade; picked up at its next scan."""

    queryset = AllowlistEntry.objects.all()
    serializer_class = AllowlistEntrySerializer
    lookup_field = "symbol"


@extend_schema(request=PortfolioSettingsSerializer, responses=PortfolioSettingsSerializer)
@api_view(["GET", "PUT", "PATCH"])
def portfolio_settings(request):
    instance = PortfolioSettings.load()
    if request.method == "GET":
        return Response(PortfolioSettingsSerializer(instance).data)
    serializer = PortfolioSettingsSerializer(instance, data=request.data, partial=request.method == "PATCH")
    serializer.is_valid(raise_exception=True)
    serializer.save()
    return Response(serializer.data)
