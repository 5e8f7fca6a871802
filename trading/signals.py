"""Edits to what the engine reads (coins, settings, the allowlist), from the admin, the API
or the importers, notify the engine on commit.

Each app hands its own models to `config_models_watch` in its `AppConfig.ready()`, so
trading never imports the apps above it.
"""

from django.db.models.signals import post_delete, post_save

from trading.services import config_changed


def _config_model_changed(sender, **kwargs):
    config_changed()


def config_models_watch(*models) -> None:
    for model in models:
        for signal in (post_save, post_delete):
            signal.connect(
                _config_model_changed,
                sender=model,
                dispatch_uid=f"config_changed:{model._meta.label}:{signal is post_save}",
            )
