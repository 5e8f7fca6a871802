"""Django settings, all from the environment (a `.env` file is read when present).

Every variable is documented in README.md. Bad values stop the process at start
(`controlpanel.config`), so nothing trades on a half-read configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from controlpanel import config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# Tests set CONTROLPANEL_READ_DOTENV=0 so a developer's .env (maybe with live keys)
# never leaks into a test run. read_env never overrides variables already set.
if os.environ.get("CONTROLPANEL_READ_DOTENV", "1") == "1":
    environ.Env.read_env(BASE_DIR / ".env")

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. `make run` writes one into .env on first start "
        "(or run `.venv/bin/python -m controlpanel.bootstrap`; an empty `SECRET_KEY=` line is filled in)."
    )
DEBUG = env.bool("DEBUG", default=False)

try:
    EXCHANGE = config.exchange_config(
        mode=env.str("EXCHANGE_MODE", default="sim"),
        api_key=env.str("BYBIT_API_KEY", default=""),
        api_secret=env.str("BYBIT_API_SECRET", default=""),
        liquidation_feed=env.str("LIQUIDATION_FEED", default="sim"),
    )
    ALLOWED_CLIENT_NETWORKS = config.client_networks(
        env.str("ALLOWED_CLIENT_NETWORKS", default=config.DEFAULT_CLIENT_NETWORKS)
    )
    TELEGRAM_ALLOWED_CHAT_IDS = config.telegram_chat_ids(env.str("TELEGRAM_ALLOWED_CHAT_IDS", default=""))
    # Optional: when set, only these Telegram users are obeyed, in any allowed chat (groups).
    TELEGRAM_ALLOWED_USER_IDS = config.telegram_user_ids(env.str("TELEGRAM_ALLOWED_USER_IDS", default=""))
except config.ConfigError as error:
    raise ImproperlyConfigured(str(error)) from None

EXCHANGE_MODE = EXCHANGE.mode
LIQUIDATION_FEED = EXCHANGE.liquidation_feed
BYBIT_API_KEY = EXCHANGE.api_key
BYBIT_API_SECRET = EXCHANGE.api_secret
# Disconnected Cancel All: resting orders die when our private socket is gone this long.
# On by default only in live, where Bybit must also have enabled DCP for the account.
BYBIT_DCP_WINDOW_S = env.int("BYBIT_DCP_WINDOW_S", default=10 if EXCHANGE_MODE == "live" else 0)
# The Procfile starts the simulator on SIM_PORT: a command in a second terminal looks there too.
SIM_BASE_URL = env.str("SIM_BASE_URL", default=f"http://127.0.0.1:{env.int('SIM_PORT', default=8601)}")
SIM_API_KEY = env.str("SIM_API_KEY", default="sim-api-key")
SIM_API_SECRET = env.str("SIM_API_SECRET", default="sim-api-secret")

CONTROL_API_TOKEN = env.str("CONTROL_API_TOKEN", default="")
TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_API_BASE_URL = env.str("TELEGRAM_API_BASE_URL", default="https://api.telegram.org")

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# -- beginner path: commands beside `make run` --------------------------------------------
# `make run` starts its own Redis when nothing answers at REDIS_URL (unset: the default
# above, the launcher's redis_boot.DEFAULT_URL), and records which (var/redis-url.json)
# while it runs; a command in a second terminal uses that one too. Never in tests.
if os.environ.get("CONTROLPANEL_READ_DOTENV", "1") == "1":
    from controlpanel.redis_boot import launcher_redis_url

    REDIS_URL = launcher_redis_url(REDIS_URL) or REDIS_URL
# -- end beginner path ---------------------------------------------------------------------
# Panic: flatten rounds until flat; the back-off (x the round number) after a round in
# which every exchange call failed (rounds never wait otherwise); and how long a second
# panic waits for a running one before answering "still running".
PANIC_FLATTEN_ROUNDS = env.int("PANIC_FLATTEN_ROUNDS", default=5)
PANIC_FLATTEN_PAUSE_S = env.float("PANIC_FLATTEN_PAUSE_S", default=0.5)
PANIC_JOIN_WAIT_S = env.float("PANIC_JOIN_WAIT_S", default=60.0)

# Seconds between heartbeats, and how old the last one may be before a process counts as down.
HEARTBEAT_INTERVAL_S = env.float("HEARTBEAT_INTERVAL_S", default=5.0)
HEARTBEAT_TIMEOUT_S = env.float("HEARTBEAT_TIMEOUT_S", default=20.0)
# How often the live dashboard pushes the account snapshot, health and lock state.
DASHBOARD_PUSH_INTERVAL_S = env.float("DASHBOARD_PUSH_INTERVAL_S", default=2.0)
# The old bots' pnl_log.csv, appended by the daily control at each change of the day's record
# (risk.pnl_log); empty: not written. A relative path is under the project directory.
_pnl_log_csv = env.str("PNL_LOG_CSV", default="")
PNL_LOG_CSV = str(BASE_DIR / _pnl_log_csv) if _pnl_log_csv else ""

# The panel is for its owner on this machine: the client-network middleware refuses
# other addresses, so the host list itself can stay open.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "controlpanel.views.csrf_refused"  # Django's 403 page, journaled first

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "core",
    "trading",
    "risk",
    "portfolio",
    "panic",
    "telegram_bridge",
    "controlpanel",
]

MIDDLEWARE = [
    "controlpanel.middleware.ClientNetworkMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "controlpanel.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "controlpanel" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "controlpanel.asgi.application"

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'controlpanel.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes write one SQLite file: WAL lets readers run beside the writer,
    # and IMMEDIATE transactions take the write lock up front, so a busy database
    # waits (timeout, seconds) instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request without it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Daphne does not serve static files; whitenoise does, straight from the apps in
# development and from STATIC_ROOT after collectstatic.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlpanel.authentication.ControlTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["controlpanel.authentication.IsOwner"],
    "EXCEPTION_HANDLER": "controlpanel.api_errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Futures control panel API",
    "DESCRIPTION": "Control and observe the Bybit USDT-perpetual trading bot. Decimals are strings.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["controlpanel.authentication.IsOwner"],
}

# channels-redis waits for a consumer's next message with BZPOPMIN, blocking 5 s on the
# server (its brpop_timeout); redis-py 8 gives every connection a 5 s socket timeout by
# default, so the answer to an idle wait raced the client's timeout and the websocket
# dropped every few seconds with "Timeout reading from ...". The read timeout must
# outlast the server-side wait.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 2}]},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Two queues, each with its own worker process (Procfile: `worker -Q celery`, `risk_worker
# -Q risk`), so a slow portfolio scan or a backlog on the default queue can never delay a
# daily stop, a TP/SL upkeep or an IM reduction. A bare `celery worker` (no -Q) consumes
# both: one worker still protects, just without the separation.
CELERY_TASK_DEFAULT_QUEUE = "celery"
RISK_QUEUE = "risk"
CELERY_TASK_QUEUES = {CELERY_TASK_DEFAULT_QUEUE: {}, RISK_QUEUE: {}}
CELERY_TASK_ROUTES = {
    # Protection: acts on the account within seconds of a limit.
    "risk.daily_control": {"queue": RISK_QUEUE},
    "risk.im_watch": {"queue": RISK_QUEUE},
    "risk.tpsl_upkeep": {"queue": RISK_QUEUE},
    # Positions nobody of ours opened (adopted, flattened or reported: risk.reconcile).
    "risk.account_reconcile": {"queue": RISK_QUEUE},
    # The panic lock Telegram /close held in Redis while the database was down: trading
    # must be locked in the record of every process soon, whatever the default queue holds.
    "panic.lock_reconcile": {"queue": RISK_QUEUE},
    # The heartbeat checks run on both workers (the beat sends one to each queue; SADD/SREM
    # decide who alerts, so one outage is one alert): a dead worker is reported by the other.
    # Not routed here: risk.account_snapshot (the dashboard's view, display only) and
    # risk.closed_pnl_sync (bookkeeping, minutes late is harmless) stay on the default queue;
    # neither protects anything, and the snapshot's read every 2 s would crowd the queue
    # that must stay free.
}
CELERY_BEAT_SCHEDULE = {
    # Bybit revises max-qty filters on the 3rd and 17th and lists symbols any day.
    "refresh-instruments": {"task": "trading.refresh_instruments", "schedule": 24 * 3600.0},
    "prune-journal": {"task": "trading.prune_journal", "schedule": 24 * 3600.0},
    # The risk manager; a run older than its period is dropped (the next beat brings a fresh one).
    "risk-daily-control": {"task": "risk.daily_control", "schedule": 5.0, "options": {"expires": 5.0}},
    "risk-im-watch": {"task": "risk.im_watch", "schedule": 5.0, "options": {"expires": 5.0}},
    "risk-tpsl-upkeep": {"task": "risk.tpsl_upkeep", "schedule": 10.0, "options": {"expires": 10.0}},
    # Positions nobody of ours opened, orphaned entry orders (risk.reconcile).
    "risk-account-reconcile": {
        "task": "risk.account_reconcile",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    # Portfolio momentum: the scan step runs a scan only when scan_interval_minutes has passed.
    "portfolio-scan": {"task": "portfolio.scan", "schedule": 60.0, "options": {"expires": 60.0}},
    "portfolio-trail": {"task": "portfolio.trail", "schedule": 60.0, "options": {"expires": 60.0}},
    # The dashboard's account view (risk.snapshot): the web process never calls the exchange.
    "risk-account-snapshot": {"task": "risk.account_snapshot", "schedule": 2.0, "options": {"expires": 2.0}},
    # Realised PnL per strategy from Bybit's closed PnL (risk.closed_pnl).
    "risk-closed-pnl-sync": {"task": "risk.closed_pnl_sync", "schedule": 30.0, "options": {"expires": 30.0}},
    # Alerts (core.alerts, core.alert_checks): digests that are due; processes and the feed gone quiet.
    "alert-digests-flush": {
        "task": "core.alert_digests_flush",
        "schedule": 10.0,
        "options": {"expires": 10.0},
    },
    "alert-checks": {"task": "core.alert_checks", "schedule": 10.0, "options": {"expires": 10.0}},
    "alert-checks-risk": {
        "task": "core.alert_checks",
        "schedule": 10.0,
        "options": {"expires": 10.0, "queue": RISK_QUEUE},
    },
    # A panic lock Telegram /close's fallback held in Redis while the database was down (panic.fallback).
    "panic-lock-reconcile": {"task": "panic.lock_reconcile", "schedule": 5.0, "options": {"expires": 5.0}},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # httpx logs full request URLs, and Telegram URLs contain the bot token.
        "httpx": {"level": "WARNING"},
        # pybit logs requests at DEBUG, including signed headers.
        "pybit": {"level": "WARNING"},
        # python-telegram-bot logs Bot API URLs (with the token) at DEBUG; the bridge also
        # redacts the token from these loggers (telegram_bridge.alerts).
        "telegram": {"level": "INFO"},
    },
}
