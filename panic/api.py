"""The panic endpoints: parse, call one service, map the outcome to a status.

    GET  /panic        the lock state
    POST /panic        lock, flatten, verify. 200 flat (verified on the exchange);
                       503 not flat after every round, or the exchange could not be read
                       (the lock stays on; the body lists what remains; POST again to retry);
                       202 another panic's flatten was still running when we stopped waiting.
    POST /panic/reset  200 unlocked (or was not locked); 409 refused, with the reason.

Both POSTs are idempotent. Auth is the API default (CONTROL_API_TOKEN bearer, or a
staff session with CSRF) behind the client-network middleware.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from panic.errors import PanicResetRefused
from panic.selectors import panic_status
from panic.services import panic_reset, panic_trigger


class PanicRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


PanicStatusSerializer = inline_serializer(
    "PanicStatus",
    {
        "panic_locked": serializers.BooleanField(),
        "panic_since": serializers.DateTimeField(allow_null=True),
        "panic_reason": serializers.CharField(),
        "running_run_key": serializers.CharField(allow_null=True),
        "may_trade": serializers.BooleanField(),
    },
)
PanicClosesSerializer = inline_serializer(
    "PanicClose",
    {
        "symbol": serializers.CharField(),
        "side": serializers.ChoiceField(choices=["Buy", "Sell"], help_text="the close order's side"),
        "qty": serializers.CharField(),
        "position_idx": serializers.IntegerField(),
        "exposure": serializers.CharField(help_text="the position's value when read, USDT"),
        "order_link_id": serializers.CharField(),
        "order_id": serializers.CharField(),
        "avg_price": serializers.CharField(allow_null=True, help_text="null: not reported yet"),
        "realised_pnl": serializers.CharField(allow_null=True, help_text="null: not reported yet"),
    },
    many=True,
)
PanicResultSerializer = inline_serializer(
    "PanicResult",
    {
        "status": serializers.ChoiceField(choices=["flat", "not_flat", "running"]),
        "flat": serializers.BooleanField(),
        "verified": serializers.BooleanField(),
        "panic_locked": serializers.BooleanField(),
        "locked_since": serializers.DateTimeField(allow_null=True),
        "newly_locked": serializers.BooleanField(),
        "run_key": serializers.CharField(),
        "by": serializers.CharField(),
        "reason": serializers.CharField(),
        "rounds": serializers.IntegerField(),
        "cancelled_orders": serializers.IntegerField(),
        "closed": serializers.ListField(child=serializers.CharField()),
        "remaining_positions": serializers.ListField(child=serializers.CharField()),
        "remaining_orders": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.CharField()),
        "cancelled": serializers.ListField(child=serializers.CharField(), help_text="orderLinkId or orderId"),
        "closes": PanicClosesSerializer,
        "rate_limited": serializers.IntegerField(help_text="orders answered 10006 and sent again"),
        "timings_ms": serializers.DictField(
            child=serializers.FloatField(), help_text="lock, cancel, closes, verification, total"
        ),
        "joined": serializers.BooleanField(),
        "running": serializers.BooleanField(),
    },
)
PanicResetSerializer = inline_serializer(
    "PanicReset",
    {
        "panic_locked": serializers.BooleanField(),
        "was_locked": serializers.BooleanField(),
        "locked_since": serializers.DateTimeField(allow_null=True),
        "may_trade": serializers.BooleanField(),
        "by": serializers.CharField(),
    },
)
PanicRefusedSerializer = inline_serializer(
    "PanicResetRefused",
    {
        "detail": serializers.CharField(),
        "reason_code": serializers.ChoiceField(choices=["not_flat", "exchange_unreadable", "panic_running"]),
        "remaining_positions": serializers.ListField(child=serializers.CharField()),
        "remaining_orders": serializers.IntegerField(),
    },
)

_TRIGGER_STATUS = {
    "flat": status.HTTP_200_OK,
    "not_flat": status.HTTP_503_SERVICE_UNAVAILABLE,
    "running": status.HTTP_202_ACCEPTED,
}


def _by(request) -> str:
    return f"api:{request.user}"


@extend_schema(methods=["GET"], responses=PanicStatusSerializer, summary="The panic lock state.")
@extend_schema(
    methods=["POST"],
    request=PanicRequestSerializer,
    responses={
        200: OpenApiResponse(
            PanicResultSerializer, description="Locked, and the exchange shows the account flat."
        ),
        202: OpenApiResponse(
            PanicResultSerializer, description="Locked; another panic's flatten is still running."
        ),
        503: OpenApiResponse(
            PanicResultSerializer, description="Locked, but NOT flat: see remaining_* and errors."
        ),
    },
    summary="Panic: lock trading, cancel every order, close every position reduce-only, verify flat.",
)
@api_view(["GET", "POST"])
def panic_view(request):
    if request.method == "GET":
        return Response(panic_status())
    serializer = PanicRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    result = panic_trigger(by=_by(request), reason=serializer.validated_data["reason"])
    return Response(result.as_dict(), status=_TRIGGER_STATUS[result.status])


@extend_schema(
    request=None,
    responses={
        200: PanicResetSerializer,
        409: OpenApiResponse(
            PanicRefusedSerializer, description="Refused: the account is not (known to be) flat."
        ),
    },
    summary="Lift the panic lock; refused unless the exchange shows no position and no open order.",
)
@api_view(["POST"])
def panic_reset_view(request):
    try:
        result = panic_reset(by=_by(request))
    except PanicResetRefused as refused:
        return Response(
            {
                "detail": refused.message,
                "reason_code": refused.reason_code,
                "remaining_positions": refused.remaining_positions,
                "remaining_orders": refused.remaining_orders,
            },
            status=status.HTTP_409_CONFLICT,
        )
    return Response(result.as_dict())
