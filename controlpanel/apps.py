from django.apps import AppConfig


class ControlpanelConfig(AppConfig):
    name = "controlpanel"
