"""Edits to coins and settings (admin, API, importers) notify the engine on commit."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portfolio.models import AllowlistEntry, PortfolioSettings
from risk.models import RiskSettings
from trading.models import Coin
from trading.services import config_changed

CONFIG_MODELS = (Coin, RiskSettings, PortfolioSettings, AllowlistEntry)


@receiver([post_save, post_delete])
def _config_model_changed(sender, **kwargs):
    if sender in CONFIG_MODELS:
        config_changed()
