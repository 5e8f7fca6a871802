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
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class DecisionSerializer(serializers.ModelSerializer):
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
