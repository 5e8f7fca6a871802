"""core.alerts: the hook services call; the Telegram bridge registers itself at start."""

from __future__ import annotations

import logging

import pytest

from core import alerts


@pytest.fixture
def no_senders(monkeypatch, db, redis_db):
    """No sender but the test's own; the alert settings' row and an empty Redis for the rate limit."""
    monkeypatch.setattr(alerts, "_senders", {})


def test_the_telegram_bridge_registers_itself_when_django_starts():
    assert "telegram" in alerts._senders


def test_without_a_sender_an_alert_is_only_logged(no_senders, caplog):
    with caplog.at_level(logging.INFO, logger="core.alerts"):
        alerts.alert_send("daily stop", kind="daily_limit")
    assert "alert_not_sent kind=daily_limit reason=no_sender" in caplog.text


def test_every_sender_gets_the_text_and_the_kind(no_senders):
    got = []
    alerts.alert_sender_register("a", lambda text, *, kind: got.append(("a", text, kind)))
    alerts.alert_sender_register("b", lambda text, *, kind: got.append(("b", text, kind)))
    alerts.alert_send("IM 85 %", kind="im_warn")
    assert got == [("a", "IM 85 %", "im_warn"), ("b", "IM 85 %", "im_warn")]


def test_a_failing_sender_never_raises_and_the_others_still_send(no_senders, caplog):
    got = []

    def broken(text, *, kind):
        raise RuntimeError("the secret token would be here")

    alerts.alert_sender_register("broken", broken)
    alerts.alert_sender_register("ok", lambda text, *, kind: got.append(text))
    alerts.alert_send("panic", kind="panic")
    assert got == ["panic"]
    assert "alert_failed kind=panic sender=broken error=RuntimeError" in caplog.text
    assert "secret token" not in caplog.text


def test_unregistering_stops_a_sender(no_senders):
    got = []
    alerts.alert_sender_register("a", lambda text, *, kind: got.append(text))
    alerts.alert_sender_unregister("a")
    alerts.alert_send("x", kind="panic")
    assert got == []
