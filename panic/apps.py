from django.apps import AppConfig


class PanicConfig(AppConfig):
    name = "panic"
