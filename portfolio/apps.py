from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "portfolio"

    def ready(self):
        from portfolio.models import AllowlistEntry, PortfolioSettings
        from trading.signals import config_models_watch

        config_models_watch(PortfolioSettings, AllowlistEntry)
