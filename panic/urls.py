"""Panic routes; controlpanel/urls.py includes these at the site root (so /panic, /panic/reset)."""

from django.urls import path

from panic import api, views

app_name = "panic"

urlpatterns = [
    path("panic", api.panic_view, name="panic"),
    path("panic/reset", api.panic_reset_view, name="reset"),
    path("panic/button", views.panic_button, name="button"),
    path("panic/reset/button", views.panic_reset_button, name="reset-button"),
]
