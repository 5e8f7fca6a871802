"""Project-level pages: the live dashboard and the health endpoint (thin edges)."""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from controlpanel.dashboard import dashboard_initial
from core.access import access_refused
from core.exchange_status import exchange_status_read
from core.heartbeat import health_report


def _health_payload():
    try:
        processes = health_report()
        exchange = exchange_status_read()
    except Exception as error:  # Redis down: say so, with 503, rather than a 500 page
        return {
            "status": "down",
            "error": f"redis unavailable ({type(error).__name__})",
            "processes": [],
        }, 503
    healthy = all(p.alive for p in processes if p.required) and not exchange.failing
    body = {
        "status": "ok" if healthy else "degraded",
        "exchange_mode": settings.EXCHANGE_MODE,
        "exchange": exchange.as_dict(),
        "processes": [asdict(p) for p in processes],
    }
    return body, 200 if healthy else 503


@extend_schema(
    responses={
        (200, "application/json"): inline_serializer(
            "Health",
            {
                "status": serializers.CharField(),
                "exchange_mode": serializers.CharField(),
                "exchange": serializers.DictField(
                    help_text="Whether the exchange answers (core.exchange_status)."
                ),
                "processes": serializers.ListField(child=serializers.DictField()),
            },
        ),
        503: None,
    },
    summary="Every process's last heartbeat and whether the exchange answers; 503 unless all "
    "required processes are alive and the exchange is not failing.",
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])  # for monitors; the client-network middleware still applies
def health(request):
    body, status = _health_payload()
    return Response(body, status=status)


def favicon(request):
    """No icon: an empty answer, not a 404 warning in the log for every page a browser opens."""
    return HttpResponse(status=204)


@login_required
def dashboard(request):
    """The live dashboard: server-rendered from the same selector the websocket pushes use.

    Reads the database and Redis only: the account comes from the worker's snapshot,
    so a page view never waits on (or spends rate limit at) the exchange.
    """
    if not request.user.is_staff:
        return HttpResponseForbidden("The dashboard is for staff users.", content_type="text/plain")
    data = dashboard_initial(now=timezone.now())
    return render(
        request,
        "controlpanel/dashboard.html",
        {
            "data": data,
            "push_interval_s": settings.DASHBOARD_PUSH_INTERVAL_S,
            "exchange_mode": data["exchange_mode"],
        },
    )


def csrf_refused(request, reason=""):
    """CSRF_FAILURE_VIEW: a form post without a valid token (a forged panic button, a settings
    form from another site) is journaled, then refused with Django's own page."""
    from django.views.csrf import csrf_failure

    access_refused(
        channel="http",
        reason="csrf",
        source=request.META.get("REMOTE_ADDR", ""),
        target=f"{request.method} {request.path}",
    )
    return csrf_failure(request, reason=reason)
