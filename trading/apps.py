from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"

    def ready(self):
        from trading import signals  # noqa: F401  (connects the config-change receivers)
