from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"

    def ready(self):
        from risk.models import RiskSettings
        from risk.selectors import engine_risk_levels
        from trading.selectors import risk_levels_reader_set
        from trading.signals import config_models_watch

        config_models_watch(RiskSettings)
        risk_levels_reader_set(engine_risk_levels)
