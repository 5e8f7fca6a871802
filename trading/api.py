"""REST API for the trading side: parse, call one service, serialize."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from core.status import status_snapshot
from trading.models import Coin, Decision
from trading.serializers import CoinSerializer, DecisionSerializer, HaltSerializer, TradingStateSerializer
from trading.services import trading_halt, trading_resume


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
        for name in ("strategy", "symbol", "outcome", "reason_code"):
            value = self.request.query_params.get(name)
            if value:
                queryset = queryset.filter(**{name: value})
        return queryset[:500]


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
