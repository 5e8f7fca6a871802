from rest_framework import viewsets

from core.api import singleton_settings_view
from core.serializers import CleanModelSerializer
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


portfolio_settings = singleton_settings_view(
    PortfolioSettingsSerializer, doc="The portfolio strategy's settings; picked up at its next scan."
)
