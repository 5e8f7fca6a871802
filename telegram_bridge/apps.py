from django.apps import AppConfig


def _telegram_alert(text: str, *, kind: str) -> None:
    # PTB is imported on the first alert, not at start: most processes never send one.
    from telegram_bridge.alerts import alert_send

    alert_send(text)


class TelegramBridgeConfig(AppConfig):
    name = "telegram_bridge"

    def ready(self):
        from core.alerts import alert_sender_register

        alert_sender_register("telegram", _telegram_alert)
