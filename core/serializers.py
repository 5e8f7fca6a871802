"""Serializer behaviour shared by the apps' APIs."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.settings import api_settings


class CleanModelSerializer(serializers.ModelSerializer):
    """Runs the model's own `full_clean()` (cross-field rules included) before saving.

    The admin and the importers call the same `full_clean()`, so the API refuses what
    they refuse, with the same messages; nothing is saved when it fails.
    """

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = self.instance if self.instance is not None else self.Meta.model()
        # Validate a copy with the changes applied; the real instance changes only on save.
        candidate = type(instance)(
            **{f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
        )
        candidate._state.adding = instance._state.adding
        for name, value in attrs.items():
            setattr(candidate, name, value)
        try:
            candidate.full_clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(_drf_errors(error)) from None
        return attrs


def _drf_errors(error: DjangoValidationError) -> dict:
    if hasattr(error, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): messages
            for field, messages in error.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: error.messages}
