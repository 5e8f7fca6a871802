from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "portfolio"

    def ready(self):
        from portfolio.models import AllowlistEntry, PortfolioSettings, allowlist_claim
        from trading.claims import symbol_claim_register
        from trading.signals import config_models_watch

        config_models_watch(PortfolioSettings, AllowlistEntry)
        symbol_claim_register("portfolio", allowlist_claim)
