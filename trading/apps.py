from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"

    def ready(self):
        from trading.models import Coin
        from trading.signals import config_models_watch

        config_models_watch(Coin)
