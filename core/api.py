"""API building blocks shared by the apps."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from core.models import AlertSettings
from core.serializers import CleanModelSerializer


def singleton_settings_view(serializer_class, *, doc: str):
    """GET / PUT / PATCH for a settings row that exists once (`Model.load()`)."""

    @extend_schema(request=serializer_class, responses=serializer_class, description=doc)
    @api_view(["GET", "PUT", "PATCH"])
    def view(request):
        instance = serializer_class.Meta.model.load()
        if request.method == "GET":
            return Response(serializer_class(instance).data)
        serializer = serializer_class(instance, data=request.data, partial=request.method == "PATCH")
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)

    return view


class AlertSettingsSerializer(CleanModelSerializer):
    class Meta:
        model = AlertSettings
        exclude = ["id"]
        read_only_fields = ["updated_at"]


alert_settings = singleton_settings_view(
    AlertSettingsSerializer,
    doc="Which alerts go to Telegram, the trade digest and the rate limit. PATCH changes some fields.",
)
