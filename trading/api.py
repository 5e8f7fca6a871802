"""REST API for the trading side: parse, call one service, serialize."""

from __future__ import annotations

import logging

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from core.status import status_snapshot
from trading.models import Coin, Decision
from trading.selectors import liquidations_recent
from trading.serializers import (
    CoinSerializer,
    DecisionSerializer,
    HaltSerializer,
    LiquidationSerializer,
    TradingStateSerializer,
)
from trading.services import trading_halt, trading_resume

logger = logging.getLogger(__name__)


class CoinViewSet(viewsets.ModelViewSet):
    """The liquidation engine's coins. Edits reach the engine within 2 s."""

    queryset = Coin.objects.all()
    serializer_class = CoinSerializer
    lookup_field = "symbol"


class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The decision journal, newest first; filter with ?strategy=, ?symbol=, ?outcome=, ?reason_code=."""

    serializer_class = DecisionSerializer

    def get_queryset(self):
        queryset = Decision.objects.all()
        if self.action != "list":
            # One row by id: a sliced queryset cannot be filtered, and DRF turned that
            # TypeError into a 404 for every id (found by tests/api/test_schema_fuzz.py).
            return queryset
        for name in ("strategy", "symbol", "outcome", "reason_code"):
            value = self.request.query_params.get(name)
            if value:
                queryset = queryset.filter(**{name: value})
        return queryset[:500]


@extend_schema(
    responses={200: LiquidationSerializer(many=True), 503: None},
    parameters=[OpenApiParameter("symbol", str, description="Only this symbol, e.g. BTCUSDT.")],
)
@api_view(["GET"])
def liquidations(request):
    """The engine's recent liquidations on configured coins (the last 50 it saw), newest first,
    each with the venue's time, its age when decided, and the entry or the skip reason."""
    try:
        rows = liquidations_recent(symbol=request.query_params.get("symbol", "").upper())
    except Exception as error:  # Redis down: say so rather than answer an empty list
        logger.warning("liquidations_redis_unavailable error=%s", type(error).__name__)
        return Response({"detail": f"redis unavailable ({type(error).__name__})"}, status=503)
    return Response(LiquidationSerializer(rows, many=True).data)


def _by(request) -> str:
    user = request.user
    return f"api:{user}" if user else "api"


@extend_schema(responses=TradingStateSerializer)
@api_view(["GET"])
def trading_state(request):
    """The trading switches (panic lock, daily disable, halt) and the engine's last figures."""
    status = status_snapshot()
    body = TradingStateSerializer(status.switches, context={"now": status.at}).data
    body["engine"] = status.engine  # None when the engine has not written any, or Redis is down
    # Figures of another run (another mode, a stopped engine) are shown, but not as current.
    body["engine_current"] = status.engine_current
    body["engine_problem"] = status.engine_problem
    return Response(body)


@extend_schema(request=HaltSerializer, responses=TradingStateSerializer)
@api_view(["POST"])
def trading_halt_view(request):
    """Halt every strategy (like Telegram /kill). Idempotent."""
    serializer = HaltSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    state = trading_halt(by=_by(request), reason=serializer.validated_data["reason"])
    return Response(TradingStateSerializer(state, context={"now": timezone.now()}).data)


@extend_schema(request=None, responses=TradingStateSerializer)
@api_view(["POST"])
def trading_resume_view(request):
    """Lift a halt (panic lock and daily disable have their own ways out). Idempotent."""
    state = trading_resume(by=_by(request))
    return Response(TradingStateSerializer(state, context={"now": timezone.now()}).data)
