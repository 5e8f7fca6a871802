"""Settings for the test suite: the real settings, fed a fixed test environment.

A developer's .env is never read here, so a test can never see live keys.
"""

import os
import tempfile

os.environ["CONTROLPANEL_READ_DOTENV"] = "0"
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-use")
os.environ.setdefault("CONTROL_API_TOKEN", "test-control-token")
os.environ.setdefault("EXCHANGE_MODE", "sim")
os.environ.setdefault("LIQUIDATION_FEED", "sim")

# Tests run against a real Redis: TEST_REDIS_URL if it answers, else an embedded one
# (see controlpanel.redis_boot). Database 15 keeps test keys away from a running panel.
from controlpanel.redis_boot import ensure_redis  # noqa: E402

os.environ["REDIS_URL"], _ = ensure_redis(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))

from controlpanel.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, as in production (WAL, busy timeout). pytest-django's default in-memory test
    # database is shared-cache SQLite, where a read racing a writer thread (the engine's
    # journal, a Celery worker) fails at once with "database table is locked" instead of
    # waiting for the lock.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"controlpanel-test-{os.getpid()}.sqlite3")
    }
