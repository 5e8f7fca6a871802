"""API authentication: the owner's bearer token, or a logged-in staff session."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions


class TokenOwner(AnonymousUser):
    """The holder of CONTROL_API_TOKEN: the account owner, without a Django user row."""

    @property
    def is_authenticated(self):
        return True

    def __str__(self):
        return "api-token"


class ControlTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <CONTROL_API_TOKEN>` (or `Token <...>`)."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        expected = settings.CONTROL_API_TOKEN
        # compare_digest: the time taken must not reveal how much of the token matched.
        if not expected or not hmac.compare_digest(header[1].encode(), expected.encode()):
            raise exceptions.AuthenticationFailed("Invalid API token.")
        return TokenOwner(), None

    def authenticate_header(self, request):
        return 'Bearer realm="controlpanel"'


class IsOwner(permissions.BasePermission):
    """The token holder, or a staff user logged in through the admin."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (isinstance(user, TokenOwner) or user.is_staff))


class ControlTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema how ControlTokenAuthentication works (HTTP bearer)."""

    target_class = "controlpanel.authentication.ControlTokenAuthentication"
    name = "ControlToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "CONTROL_API_TOKEN from .env"}
