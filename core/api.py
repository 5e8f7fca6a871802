"""API building blocks shared by the apps."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response


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
