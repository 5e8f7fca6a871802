"""The API's exception handler: DRF's own, after journaling refused callers (`core.access`).

Apart from `controlpanel.authentication` because DRF imports that module while its own
`rest_framework.views` is still loading.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.views import exception_handler

from core.access import access_refused


def api_exception_handler(exc, context):
    """DRF's handler, after journaling a refused caller: no token or a wrong one (401), or a
    logged-in user who is not staff (403)."""
    if isinstance(
        exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed, exceptions.PermissionDenied)
    ):
        request = context.get("request")
        reason = "api_permission" if isinstance(exc, exceptions.PermissionDenied) else "api_token"
        access_refused(
            channel="http",
            reason=reason,
            source=request.META.get("REMOTE_ADDR", "") if request is not None else "",
            target=f"{request.method} {request.path}" if request is not None else "",
        )
    return exception_handler(exc, context)
