from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.models import TradingState
from core.serializers import CleanModelSerializer
from trading.models import Coin, Decision


class CoinSerializer(CleanModelSerializer):
    class Meta:
        model = Coin
        fields = [
            "id",
            "symbol",
            "enabled",
            "long_offset_pct",
            "short_offset_pct",
            "min_liquidation_usdt",
            "order_size_usdt",
            "order_size_pct_equity",
            "leverage",
            "take_profit_pct",
            "stop_loss_pct",
            "vwap_window_minutes",
            "entry_cooldown_seconds",
            "max_event_age_ms",
            "demo",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "demo", "created_at", "updated_at"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        # Switching a demo coin on makes it the owner's: a start outside sim no longer disables it.
        if attrs.get("enabled") and self.instance is not None and not self.instance.enabled:
            attrs["demo"] = False
        return attrs


class DetailFigure(serializers.Field):
    """A number the engine journals in ``details`` (None on rows without it)."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, allow_null=True, **kwargs)

    def to_representation(self, decision):
        return (decision.details or {}).get(self.field_name)


@extend_schema_field({"type": "integer", "nullable": True})
class EventAgeField(DetailFigure):
    pass


@extend_schema_field({"type": "number", "nullable": True})
class DurationField(DetailFigure):
    pass


class DecisionSerializer(serializers.ModelSerializer):
    # The engine's latency of an entry (also in details, for the engine's own rows only).
    event_age_ms = EventAgeField(help_text="Venue event time to receipt, ms (engine rows).")
    decide_us = DurationField(help_text="Receipt to the order handed to its thread, microseconds (entries).")
    ack_ms = DurationField(help_text="Order handed over to the exchange's answer, ms (entries).")

    class Meta:
        model = Decision
        fields = [
            "id",
            "created_at",
            "strategy",
            "symbol",
            "action",
            "outcome",
            "reason_code",
            "details",
            "order_link_id",
            "event_age_ms",
            "decide_us",
            "ack_ms",
        ]


class TradingStateSerializer(serializers.ModelSerializer):
    may_trade = serializers.SerializerMethodField()

    class Meta:
        model = TradingState
        fields = [
            "panic_locked",
            "panic_since",
            "panic_reason",
            "disabled_until",
            "disabled_reason",
            "halted",
            "halted_since",
            "halted_by",
            "may_trade",
            "updated_at",
        ]

    def get_may_trade(self, state) -> bool:
        return state.may_trade(self.context["now"])


class HaltSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class LiquidationSerializer(serializers.Serializer):
    """One liquidation the engine saw on a configured coin, and what it made of it."""

    at_ms = serializers.IntegerField(help_text="When the engine decided (epoch ms, UTC).")
    event_ms = serializers.IntegerField(help_text="The venue's time of the liquidation (epoch ms, UTC).")
    event_age_ms = serializers.IntegerField(
        allow_null=True, help_text="at_ms - event_ms: how old the liquidation was when decided."
    )
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=["long", "short"], help_text="The side that was liquidated.")
    price = serializers.CharField(help_text="Liquidation price (USDT), a decimal string.")
    qty = serializers.CharField(help_text="Base-coin quantity, a decimal string.")
    notional = serializers.CharField(help_text="price x qty in USDT, a decimal string.")
    source = serializers.CharField(help_text="The feed: binance, bybit or sim.")
    bybit_price = serializers.CharField(allow_null=True, help_text="Bybit's last price the rule read.")
    vwap = serializers.CharField(allow_null=True, help_text="The coin's VWAP the rule compared with.")
    outcome = serializers.ChoiceField(choices=["entry", "skipped"])
    reason = serializers.CharField(allow_blank=True, help_text="The skip reason (empty for an entry).")

    def to_representation(self, row):
        result = row.get("result", "")
        return super().to_representation(
            {
                **row,
                "event_age_ms": row.get("event_age_ms"),
                "outcome": "entry" if result == "entry" else "skipped",
                "reason": "" if result == "entry" else result,
            }
        )
