"""Dashboard fixtures: a fast push interval and a logged-in staff user. ``gateway`` and
``three_owner_book`` are the shared ones of tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.support.dashboard import session_cookie


@pytest.fixture
def fast_push(settings):
    settings.DASHBOARD_PUSH_INTERVAL_S = 0.2
    return settings


@pytest.fixture
def staff_cookie(client, django_user_model) -> str:
    user = django_user_model.objects.create_user("owner", password="pw-owner-123", is_staff=True)
    return session_cookie(client, user)
