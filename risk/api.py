"""REST API of the risk app: its settings, the daily record, and the account as the worker
last read it (the same status snapshot the dashboard and Telegram read)."""

import io

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers, serializers
from rest_framework.decorators import api_view, renderer_classes
from rest_framework.response import Response

from core.api import singleton_settings_view
from core.serializers import CleanModelSerializer
from core.status import status_snapshot
from risk.models import DailyPnL, RiskSettings
from risk.pnl_log import pnl_log_write
from risk.selectors import PNL_DAYS_DEFAULT, PNL_DAYS_MAX, account_summary, realised_pnl


class CsvRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class RiskSettingsSerializer(CleanModelSerializer):
    class Meta:
        model = RiskSettings
        exclude = ["id"]
        read_only_fields = ["updated_at"]


class DailyPnLSerializer(CleanModelSerializer):
    class Meta:
        model = DailyPnL
        exclude = ["id", "transfers_since_ms", "transfers_read_ms"]


risk_settings = singleton_settings_view(
    RiskSettingsSerializer,
    doc="The account guards. PATCH changes some fields; every rule of the admin applies.",
)


@extend_schema(responses=DailyPnLSerializer(many=True))
@api_view(["GET"])
def daily_pnl(request):
    """Daily PnL rows, newest first (at most a year): a row per UTC day and account (``account``:
    exchange mode and Bybit UID), so a day with a change of account has two."""
    return Response(DailyPnLSerializer(DailyPnL.objects.all()[:366], many=True).data)


# -- the account, as the worker last read it (the web process never calls the exchange) --


class DailyLimitsSerializer(serializers.Serializer):
    date = serializers.DateField()
    account = serializers.CharField(
        allow_null=True, help_text='The measured account: exchange mode and Bybit UID ("live:53888001").'
    )
    baseline_equity = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    net_transfers = serializers.DecimalField(
        max_digits=20,
        decimal_places=4,
        allow_null=True,
        help_text="Money moved in minus money moved out since the baseline (deposits, withdrawals, "
        "transfers): not counted as PnL; it moves the target and stop equities.",
    )
    pnl_usdt = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    pnl_pct = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    target_pct = serializers.DecimalField(max_digits=6, decimal_places=2)
    stop_pct = serializers.DecimalField(max_digits=6, decimal_places=2)
    target_equity = serializers.CharField(
        allow_null=True, help_text="Equity at which the daily target fires (net transfers included)."
    )
    stop_equity = serializers.CharField(
        allow_null=True, help_text="Equity at which the daily stop fires (net transfers included)."
    )
    outcome = serializers.CharField(allow_null=True)


class AccountSerializer(serializers.Serializer):
    available = serializers.BooleanField(help_text="False until the worker has read the account once.")
    error = serializers.CharField(
        help_text="Why the figures are missing or old (Redis down, exchange error)."
    )
    at = serializers.DateTimeField(allow_null=True, help_text="When the worker read the account.")
    age_s = serializers.FloatField(allow_null=True)
    stale = serializers.BooleanField(help_text="Older than 10 s: the worker is not publishing.")
    equity = serializers.CharField(allow_null=True)
    wallet_balance = serializers.CharField(allow_null=True)
    available_balance = serializers.CharField(allow_null=True)
    initial_margin = serializers.CharField(allow_null=True)
    maintenance_margin = serializers.CharField(allow_null=True)
    unrealised_pnl = serializers.CharField(allow_null=True)
    im_pct = serializers.CharField(
        allow_null=True,
        help_text="Bybit's accountIMRate in %: initial margin over the margin balance (coins after their "
        'haircut), the figure Bybit\'s app shows ("Infinity" with margin in use and no margin balance).',
    )
    im_warn_pct = serializers.DecimalField(max_digits=6, decimal_places=2)
    im_reduce_pct = serializers.DecimalField(max_digits=6, decimal_places=2)
    daily = DailyLimitsSerializer()


class PositionSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    owner = serializers.CharField(help_text="WL, PM or manual: the strategy that manages it.")
    side = serializers.CharField()
    size = serializers.CharField()
    entry_price = serializers.CharField(allow_null=True)
    mark_price = serializers.CharField(allow_null=True)
    position_value = serializers.CharField(allow_null=True)
    leverage = serializers.CharField(allow_null=True)
    unrealised_pnl = serializers.CharField(allow_null=True)
    take_profit = serializers.CharField(allow_null=True)
    stop_loss = serializers.CharField(allow_null=True)
    liq_price = serializers.CharField(allow_null=True)


class OrderSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    owner = serializers.CharField(
        help_text="Who placed it, from the orderLinkId (WL, PM, risk, panic, manual)."
    )
    side = serializers.CharField()
    order_type = serializers.CharField()
    stop_order_type = serializers.CharField(
        help_text="TakeProfit, StopLoss, ... or empty for an ordinary order."
    )
    status = serializers.CharField()
    price = serializers.CharField(allow_null=True)
    trigger_price = serializers.CharField(allow_null=True)
    qty = serializers.CharField(allow_null=True)
    leaves_qty = serializers.CharField(allow_null=True)
    reduce_only = serializers.BooleanField()
    order_link_id = serializers.CharField()
    created_ms = serializers.IntegerField(allow_null=True)


@extend_schema(responses=AccountSerializer)
@api_view(["GET"])
def account(request):
    """Equity, margin and IM % as the worker last read them, with their age, and today's PnL
    against the daily target and stop."""
    return Response(AccountSerializer(account_summary(status_snapshot())).data)


@extend_schema(responses=PositionSerializer(many=True))
@api_view(["GET"])
def positions(request):
    """Open positions (worker snapshot): the strategy that manages each, TP/SL, liquidation price."""
    return Response(
        PositionSerializer((status_snapshot().account or {}).get("positions", []), many=True).data
    )


@extend_schema(responses=OrderSerializer(many=True))
@api_view(["GET"])
def orders(request):
    """Open orders (worker snapshot), each with who placed it."""
    rows = (status_snapshot().account or {}).get("open_orders", [])
    return Response(OrderSerializer(rows, many=True).data)


@extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
@api_view(["GET"])
@renderer_classes([CsvRenderer])
def daily_pnl_csv(request):
    """The daily record as the old bots' pnl_log.csv (every day, oldest first)."""
    out = io.StringIO()
    pnl_log_write(out=out)
    response = HttpResponse(out.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="pnl_log.csv"'
    return response


# -- realised PnL per strategy (Bybit's closed PnL, synced by the worker) --


class PnlQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=PNL_DAYS_MAX, default=PNL_DAYS_DEFAULT)


class PnlSumSerializer(serializers.Serializer):
    strategy = serializers.CharField(help_text="WL, PM, manual, or total.")
    pnl = serializers.DecimalField(
        max_digits=24, decimal_places=8, help_text="Realised PnL in USDT, net of fees."
    )
    fees = serializers.DecimalField(
        max_digits=24, decimal_places=8, help_text="The open and close fees in it (and funding)."
    )
    closes = serializers.IntegerField(help_text="Closing orders counted.")


class PnlDaySerializer(PnlSumSerializer):
    date = serializers.DateField(help_text="UTC day.")


class PnlSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="Today (UTC).")
    days = serializers.IntegerField()
    strategies = serializers.ListField(child=serializers.CharField())
    today = PnlSumSerializer(many=True)
    last_7_days = PnlSumSerializer(many=True)
    last_30_days = PnlSumSerializer(many=True)
    daily = PnlDaySerializer(many=True, help_text="Every day of the period and strategy, oldest first.")


@extend_schema(
    parameters=[
        OpenApiParameter(
            "days",
            int,
            description=f"Days of `daily`, today included (1-{PNL_DAYS_MAX}, default {PNL_DAYS_DEFAULT}).",
        )
    ],
    responses=PnlSerializer,
)
@api_view(["GET"])
def pnl(request):
    """Realised PnL per strategy (WL, PM, manual) and UTC day, from Bybit's closed PnL as the
    worker last synced it (every 30 s; the web process never calls the exchange): per day,
    and today's, the last 7 and 30 days' totals. Fees are included in the PnL and shown apart."""
    query = PnlQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return Response(PnlSerializer(realised_pnl(now=timezone.now(), days=query.validated_data["days"])).data)
