"""Settings from the environment, and first-run secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from controlpanel.bootstrap import ensure_env_file, read_env_keys
from controlpanel.config import ConfigError, client_networks, exchange_config, telegram_chat_ids
from tests.support import REPO


@pytest.mark.parametrize("mode", ["demo", "testnet", "live"])
def test_a_real_venue_refuses_to_start_without_keys(mode):
    with pytest.raises(ConfigError, match=f"EXCHANGE_MODE={mode} needs BYBIT_API_KEY and BYBIT_API_SECRET"):
        exchange_config(mode=mode, api_key="", api_secret="", liquidation_feed="binance")
    with pytest.raises(ConfigError):
        exchange_config(mode=mode, api_key="k", api_secret="", liquidation_feed="binance")


def test_modes_and_feeds_are_checked():
    assert (
        exchange_config(mode=" LIVE ", api_key="k", api_secret="s", liquidation_feed="bybit").mode == "live"
    )
    assert exchange_config(mode="", api_key="", api_secret="", liquidation_feed="").mode == "sim"
    with pytest.raises(ConfigError, match="EXCHANGE_MODE='paper' is not one of sim, demo, testnet, live"):
        exchange_config(mode="paper", api_key="", api_secret="", liquidation_feed="sim")
    with pytest.raises(ConfigError, match="LIQUIDATION_FEED='okx'"):
        exchange_config(mode="sim", api_key="", api_secret="", liquidation_feed="okx")
    with pytest.raises(ConfigError, match="LIQUIDATION_FEED=sim only works with EXCHANGE_MODE=sim"):
        exchange_config(mode="live", api_key="k", api_secret="s", liquidation_feed="sim")


def test_client_networks_and_chat_ids_parse_or_fail_clearly():
    assert [str(n) for n in client_networks("")] == ["127.0.0.1/32", "::1/128"]
    assert [str(n) for n in client_networks("10.0.0.0/8, 192.168.1.7")] == ["10.0.0.0/8", "192.168.1.7/32"]
    with pytest.raises(ConfigError, match="'10.0.0.300' is not an IP address"):
        client_networks("10.0.0.300")
    assert telegram_chat_ids("123, -100456,") == frozenset({123, -100456})
    with pytest.raises(ConfigError, match="'@me' is not a chat id"):
        telegram_chat_ids("123,@me")


def run_django(code: str, **env) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "EXCHANGE_", "TELEGRAM_"))
    }
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlpanel.settings",
            "CONTROLPANEL_READ_DOTENV": "0",
            "SECRET_KEY": "k",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_come_from_the_environment(tmp_path):
    result = run_django(
        "from django.conf import settings as s; "
        "print(s.EXCHANGE_MODE, s.LIQUIDATION_FEED, s.REDIS_URL, s.DATABASES['default']['ENGINE'], "
        "s.DATABASES['default']['NAME'], s.BYBIT_DCP_WINDOW_S, sorted(s.TELEGRAM_ALLOWED_CHAT_IDS), "
        "s.TELEGRAM_API_BASE_URL, [str(n) for n in s.ALLOWED_CLIENT_NETWORKS])",
        EXCHANGE_MODE="testnet",
        BYBIT_API_KEY="key",
        BYBIT_API_SECRET="secret",
        LIQUIDATION_FEED="bybit",
        REDIS_URL="redis://10.1.2.3:6379/2",
        DATABASE_URL="postgres://bot:pw@db.example:5432/panel",
        TELEGRAM_ALLOWED_CHAT_IDS="42,-7",
        TELEGRAM_API_BASE_URL="http://127.0.0.1:9999",
        ALLOWED_CLIENT_NETWORKS="10.0.0.0/8",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 6)[:6] == [
        "testnet",
        "bybit",
        "redis://10.1.2.3:6379/2",
        "django.db.backends.postgresql",
        "panel",
        "0",
    ]
    assert "[-7, 42] http://127.0.0.1:9999 ['10.0.0.0/8']" in result.stdout


def test_the_default_is_sim_on_sqlite_in_wal_mode():
    result = run_django(
        "from django.conf import settings as s; from django.db import connection; "
        "connection.ensure_connection(); "
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); "
        "print(s.EXCHANGE_MODE, s.LIQUIDATION_FEED, s.DATABASES['default']['NAME'], c.fetchone()[0])",
        DATABASE_URL=f"sqlite:///{REPO / 'var' / 'test-settings.sqlite3'}",
    )
    assert result.returncode == 0, result.stderr
    mode, feed, name, journal = result.stdout.split()
    assert (mode, feed, journal) == ("sim", "sim", "wal") and name.endswith("test-settings.sqlite3")


def test_live_without_keys_stops_the_process_and_says_why():
    result = run_django("print('started')", EXCHANGE_MODE="live")
    assert result.returncode != 0 and "started" not in result.stdout
    assert "EXCHANGE_MODE=live needs BYBIT_API_KEY and BYBIT_API_SECRET" in result.stderr


def test_a_missing_secret_key_is_explained():
    result = run_django("print('started')", SECRET_KEY="")
    assert result.returncode != 0 and "SECRET_KEY is not set" in result.stderr


def test_first_run_generates_secrets_once_and_keeps_existing_lines(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("EXCHANGE_MODE=sim\nexport LOG_LEVEL=DEBUG")
    generated = ensure_env_file(env_file, environ={})
    assert set(generated) == {"SECRET_KEY", "CONTROL_API_TOKEN"}
    assert len(generated["CONTROL_API_TOKEN"]) >= 40
    text = env_file.read_text()
    assert text.startswith("EXCHANGE_MODE=sim\nexport LOG_LEVEL=DEBUG\n")
    assert f"CONTROL_API_TOKEN={generated['CONTROL_API_TOKEN']}" in text
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert read_env_keys(env_file) == {"EXCHANGE_MODE", "LOG_LEVEL", "SECRET_KEY", "CONTROL_API_TOKEN"}
    assert ensure_env_file(env_file, environ={}) == {}
    assert env_file.read_text() == text


def test_secrets_already_in_the_environment_are_not_generated(tmp_path):
    env_file = tmp_path / ".env"
    assert ensure_env_file(env_file, environ={"SECRET_KEY": "x", "CONTROL_API_TOKEN": "y"}) == {}
    assert not env_file.exists()


def test_the_empty_secret_lines_of_env_example_are_filled_in_place(tmp_path):
    env_file = tmp_path / ".env"
    example = (REPO / ".env.example").read_text()
    assert "\nSECRET_KEY=\n" in example and "\nCONTROL_API_TOKEN=\n" in example  # what a copy starts with
    env_file.write_text(example)
    generated = ensure_env_file(env_file, environ={})
    assert set(generated) == {"SECRET_KEY", "CONTROL_API_TOKEN"}
    lines = env_file.read_text().splitlines()
    assert lines.count(f"SECRET_KEY={generated['SECRET_KEY']}") == 1
    assert [line for line in lines if line.startswith("SECRET_KEY")] == [
        f"SECRET_KEY={generated['SECRET_KEY']}"
    ]
    assert [line for line in lines if line.startswith("CONTROL_API_TOKEN")] == [
        f"CONTROL_API_TOKEN={generated['CONTROL_API_TOKEN']}"
    ]
    # Filled where the empty line was: the rest of the file is untouched, line for line.
    assert len(lines) == len(example.splitlines())
    # And Django starts with it (settings read .env as django-environ does).
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import environ, os; environ.Env.read_env(os.environ['F']); print(os.environ['SECRET_KEY'])",
        ],
        env={"F": str(env_file), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == generated["SECRET_KEY"], result.stderr
    # Quoted empties count as empty too; a value already there is kept.
    env_file.write_text('SECRET_KEY=""\nCONTROL_API_TOKEN=mine\n')
    assert set(ensure_env_file(env_file, environ={})) == {"SECRET_KEY"}
    assert env_file.read_text().splitlines()[1] == "CONTROL_API_TOKEN=mine"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("var/pnl_log.csv", str(REPO / "var" / "pnl_log.csv")),
        ("/srv/pnl_log.csv", "/srv/pnl_log.csv"),
    ],
)
def test_the_pnl_log_path_is_off_by_default_and_relative_to_the_project(value, expected):
    result = run_django(
        "from django.conf import settings as s; print(repr(s.PNL_LOG_CSV))", PNL_LOG_CSV=value
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(expected)
