"""`make chaos` (`python -m chaos`): the whole process set in sim mode under a seeded fault
script, then the invariants checked from the simulator's own record and the database,
printed as a table; exit status 1 on any violation. See README "Chaos run".

    CHAOS_SECONDS=300 CHAOS_SEED=42 .venv/bin/python -m chaos
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chaos .venv/bin/python -m chaos --seconds 60

Everything of the run (the process logs, the answers of the panel, the table) stays in
var/chaos/<time>-seed<seed>/. It uses its own SQLite file there (or DATABASE_URL, which
must name an empty database), its own Redis database (CHAOS_REDIS_URL, default
redis://127.0.0.1:6379/6, flushed at the start), free ports, and fresh random keys and
tokens, so it can run beside `make run`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from chaos import invariants as inv
from chaos.clients import Panel, SimControl, http_json
from chaos.processes import ROOT, ProcessSet
from chaos.script import REPLAY_END, daily_stop_step, plan

PROCESSES = ("sim", "web", "engine", "riskwatch", "worker", "risk_worker", "beat", "telegram")
# How long a switch may take to reach the engine before an entry counts against it: the
# README says 100 ms for the switches (pub/sub) and 2 s for settings; 1 s on a loaded machine.
SWITCH_GRACE_MS = 1000
# After a cascade's last liquidation, the engine may still be answering it.
CASCADE_GRACE_MS = 3000
SETTLE_S = 25.0  # after the last fault: TP/SL upkeep (10 s) and the snapshot (2 s) catch up
SETTLE_FLATTEN_S = 5.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", "300")))
    parser.add_argument(
        "--seed", type=int, default=int(os.environ["CHAOS_SEED"]) if os.environ.get("CHAOS_SEED") else None
    )
    parser.add_argument("--data", default=os.environ.get("SIM_DATA", "sample_data"))
    parser.add_argument("--report", type=Path, help="also write the invariants' outcome here as JSON")
    return parser.parse_args(argv)


def _secrets() -> dict[str, str]:
    return {
        "SIM_API_KEY": f"chaoskey{secrets.token_hex(8)}",
        "SIM_API_SECRET": f"chaossecret{secrets.token_hex(16)}",
        "CONTROL_API_TOKEN": secrets.token_urlsafe(32),
        "TELEGRAM_BOT_TOKEN": f"{random.randint(10**9, 10**10 - 1)}:AA{secrets.token_urlsafe(24)}",
        "SECRET_KEY": secrets.token_urlsafe(40),
    }


def _sample_minutes(data: Path) -> int:
    klines = sorted((data / "klines").glob("*.csv"))
    return max(1, sum(1 for line in klines[0].read_text().splitlines() if line[:1].isdigit()))


def _prepare_database() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from trading.models import Decision

    if Decision.objects.exists():
        raise SystemExit(
            "DATABASE_URL names a database with a journal already: give the chaos run an empty one."
        )
    call_command("load_demo_config", verbosity=0)


def main(argv=None) -> int:
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    print(f"chaos seed={seed} seconds={args.seconds:g}   (CHAOS_SEED={seed} repeats this run)", flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_dir = ROOT / "var" / "chaos" / f"{stamp}-seed{seed}"
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True)
    keys = _secrets()

    sys.path.insert(0, str(ROOT))
    from controlpanel.redis_boot import ensure_redis

    redis_url, _ = ensure_redis(os.environ.get("CHAOS_REDIS_URL", DEFAULT_REDIS_URL))
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # the run's own database (CHAOS_REDIS_URL)
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{run_dir / 'chaos.sqlite3'}"
    sim_port, web_port = free_port(), free_port()
    data = (ROOT / args.data).resolve()
    speed = os.environ.get("SIM_SPEED") or f"{_sample_minutes(data) * 60 / (REPLAY_END * args.seconds):.1f}"

    from chaos.telegram_stub import BotApiStub

    bot = BotApiStub(keys["TELEGRAM_BOT_TOKEN"]).start()
    env = {
        **os.environ,
        **keys,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": "controlpanel.settings",
        "CONTROLPANEL_READ_DOTENV": "0",
        "EXCHANGE_MODE": "sim",
        "LIQUIDATION_FEED": "sim",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SIM_PORT": str(sim_port),
        "SIM_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "SIM_DATA": str(data),
        "SIM_SPEED": speed,
        "WEB_PORT": str(web_port),
        "TELEGRAM_ALLOWED_CHAT_IDS": "4242",
        "TELEGRAM_API_BASE_URL": bot.base_url(),
        "CELERY_BEAT_SCHEDULE": str(run_dir / "celerybeat-schedule"),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    _prepare_database()
    print(
        f"  run dir {run_dir.relative_to(ROOT)}   database {database_url.split(':')[0]}   redis {redis_url}\n"
        f"  sim :{sim_port} (speed {speed})   web :{web_port}",
        flush=True,
    )

    processes = ProcessSet(env=env, log_dir=log_dir, names=PROCESSES)
    processes.commands["sim"] += " --no-autostart"  # the replay starts once the engine listens
    try:
        return _run(args, seed, keys, processes, run_dir, log_dir, bot, sim_port, web_port, speed)  # noqa
    finally:
        processes.stop_all()
        bot.stop()


def _run(args, seed, keys, processes, run_dir, log_dir, bot, sim_port, web_port, speed) -> int:
    from chaos.driver import Driver, wait_engine_stream
    from trading.bybit import BybitGateway
    from trading.models import Coin

    sim = SimControl(f"http://127.0.0.1:{sim_port}")
    processes.start("sim")
    deadline = time.monotonic() + 60
    while not sim.answers():
        if time.monotonic() > deadline or not processes.alive("sim"):
            raise SystemExit(f"the simulator did not start: see {log_dir / 'sim.log'}")
        time.sleep(0.2)
    for name in PROCESSES[1:]:
        processes.start(name)
    if not wait_engine_stream(sim, 120):
        raise SystemExit(
            f"the engine never subscribed to the liquidation stream: see {log_dir / 'engine.log'}"
        )
    panel = Panel(f"http://127.0.0.1:{web_port}", keys["CONTROL_API_TOKEN"])
    panel.call("health", "GET", "/api/health")
    gateway = BybitGateway(
        mode="sim",
        api_key=keys["SIM_API_KEY"],
        api_secret=keys["SIM_API_SECRET"],
        base_url=sim.base_url,
        timeout=5.0,
    )
    gateway.prepare()
    filters = {row["symbol"]: row for row in sim.instruments()}
    enabled = list(Coin.objects.filter(enabled=True))
    coins = {coin.symbol: coin.min_liquidation_usdt for coin in enabled}
    hand_symbol = next(symbol for symbol in sorted(filters, reverse=True) if symbol not in coins)
    tradable = tuple(sorted(coin.symbol for coin in enabled if _can_enter(coin, filters, sim)))
    steps = plan(seed=seed, seconds=args.seconds, coins=tradable, hand_symbol=hand_symbol)
    driver = Driver(
        processes=processes,
        sim=sim,
        panel=panel,
        gateway=gateway,
        filters=filters,
        lick_values=coins,
        tradable=tradable,
    )
    sim.call("POST", "/sim/replay", {"speed": float(speed)})
    print(
        f"  replay started; {len(steps)} steps over {args.seconds:g} s, then {SETTLE_S:g} s to settle",
        flush=True,
    )
    driver.run(steps, time.monotonic())
    _settle(processes, panel)
    final = _final_comparison(sim, panel, gateway)
    print("  compared; now the daily-stop crossing", flush=True)
    driver.run([daily_stop_step(hand_symbol)], time.monotonic())
    _wait_daily_stop()
    run = SimpleNamespace(
        args=args, seed=seed, keys=keys, processes=processes, run_dir=run_dir, log_dir=log_dir, bot=bot,
        sim=sim, panel=panel, driver=driver, speed=speed, final=final,
    )  # fmt: skip
    return _check_and_report(run)


def _final_comparison(sim: SimControl, panel: Panel, gateway) -> SimpleNamespace:
    """After the last restart and the quiet spell: the venue's positions and open orders,
    and the panel's, read one after the other (the daily-stop crossing comes after)."""
    from chaos import collect

    exchange = collect.exchange_positions(sim.state())
    exchange_orders = collect.exchange_order_keys(gateway)
    positions = panel.call("positions", "GET", "/api/positions")
    orders = panel.call("orders", "GET", "/api/orders")
    return SimpleNamespace(
        exchange=exchange,
        exchange_orders=exchange_orders,
        panel=collect.panel_positions(positions.body),
        panel_orders=collect.panel_order_keys(orders.body),
    )


def _wait_daily_stop(timeout_s: float = 60) -> None:
    """Until the risk manager has journaled the stop (it passes every 5 s)."""
    from trading.models import Decision

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if Decision.objects.filter(action="daily_stop").exists():
            time.sleep(SETTLE_FLATTEN_S)  # its flatten's closes reach the venue's record
            return
        time.sleep(1)
    print("  warning: no daily_stop row in the journal after the crossing", flush=True)


def _can_enter(coin, filters: dict, sim: SimControl) -> bool:
    """Whether the coin's order (margin x leverage) reaches the instrument's minimum qty at
    today's price: the demo's 10 USDT at 10x buys no BTC, so a BTC cascade tests nothing."""
    from decimal import Decimal

    notional = (coin.order_size_usdt or Decimal("0")) * coin.leverage
    minimum = Decimal(filters[coin.symbol]["lotSizeFilter"]["minOrderQty"]) * Decimal(sim.price(coin.symbol))
    return coin.order_size_usdt is None or notional >= minimum * Decimal("1.05")


def _settle(processes: ProcessSet, panel: Panel) -> None:
    for name in processes.running:
        if not processes.alive(name):
            processes.start(name)
    time.sleep(SETTLE_S)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, _ = http_json("GET", panel.base_url + "/api/health")
        if status == 200:
            return
        time.sleep(1)
    print("  warning: /api/health still not 200 after settling", flush=True)


def _check_and_report(run: SimpleNamespace) -> int:
    from chaos import collect
    from chaos.report import table
    from risk.models import RiskSettings
    from trading.models import Coin, Decision

    args, seed, keys, processes = run.args, run.seed, run.keys, run.processes
    run_dir, log_dir, bot, sim, panel, driver = (
        run.run_dir,
        run.log_dir,
        run.bot,
        run.sim,
        run.panel,
        run.driver,
    )
    record, state, final = sim.record(), sim.state(), run.final
    orders, fills = collect.sent_orders(record), collect.fills(record)
    journal = collect.journal_rows()
    windows = collect.switch_windows(panel.calls)
    windows += inv.im_block_windows(driver.im_samples, RiskSettings.load().im_reduce_pct)
    coin_symbols = set(Coin.objects.values_list("symbol", flat=True))
    sources = collect.log_texts(log_dir)
    sources["panel answers"] = "\n".join(panel.texts)
    sources["database rows"] = collect.database_text()
    sources["telegram messages"] = "\n".join(bot.sent)

    checks = [
        inv.link_ids_sent_once(orders),
        inv.one_order_per_decision(orders, journal),
        inv.no_entry_while_blocked(orders, windows, grace_ms=SWITCH_GRACE_MS),
        inv.order_filters_respected(orders, collect.instrument_filters(driver.filters.values())),
        inv.one_open_entry_per_symbol(orders, fills, driver.cascades, grace_ms=CASCADE_GRACE_MS),
        inv.journal_has_every_entry(orders, journal),
        inv.panel_matches_exchange(final.exchange, final.panel),
        inv.panel_orders_match_exchange(final.exchange_orders, final.panel_orders),
        inv.open_wl_positions_have_tpsl(final.exchange, coin_symbols),
        inv.daily_stop_flattened_once(journal, fills, crossed=driver.crossed_daily_stop),
        inv.panic_ended_flat(panel.calls, fills),
        inv.reset_refused_while_not_flat(panel.calls, fills),
        inv.no_secrets(sources, keys),
    ]
    refused = Counter(str(order.reject_code) for order in orders if not order.accepted)
    resent = len(orders) - len({(order.link_id) for order in orders})
    statuses = lambda name: ", ".join(str(c.status) for c in panel.calls if c.name == name) or "none"  # noqa: E731
    sections = [
        (
            "run",
            [
                ("database", os.environ["DATABASE_URL"].split(":")[0]),
                ("replay speed", f"{run.speed}x"),
                ("run dir", str(run_dir.relative_to(ROOT))),
            ],
        ),
        (
            "events",
            [
                ("liquidations replayed", state["replay"]["liquidationsEmitted"]),
                (
                    "liquidations injected",
                    f"{driver.injected_liquidations} in {len(driver.cascades)} cascades",
                ),
                ("WL decisions journaled", Decision.objects.filter(strategy="wl").count()),
                ("telegram messages sent", len(bot.sent)),
            ],
        ),
        (
            "orders",
            [
                ("received by the venue", len(orders)),
                ("accepted", sum(order.accepted for order in orders)),
                ("refused, by retCode", refused),
                ("entries accepted (wl/pm)", sum(order.is_entry and order.accepted for order in orders)),
                ("copies of an id sent again", resent),
                ("fills", len(fills)),
            ],
        ),
        (
            "faults",
            [
                ("injected, by kind", driver.faults),
                ("websocket drops", driver.drops),
                ("cleared unused before the crash", driver.faults_cleared),
                ("left unused at the end", len(state["faults"])),
            ],
        ),
        (
            "restarts",
            [
                ("SIGKILLed and restarted", processes.kills),
                ("exited on their own", driver.unexpected_exits),
            ],
        ),
        (
            "script",
            [
                ("panic answers", statuses("panic")),
                ("reset answers", statuses("reset")),
                ("halt / resume answers", f"{statuses('halt')} / {statuses('resume')}"),
                ("daily stop crossed", "yes" if driver.crossed_daily_stop else "no"),
                ("no-entry windows, by kind", Counter(window.kind for window in windows)),
            ],
        ),
    ]
    text = table(header=f"chaos seed={seed} seconds={args.seconds:g}", sections=sections, checks=checks)
    print("\n" + text, flush=True)
    (run_dir / "report.txt").write_text(text + "\n")
    outcome = [{"name": c.name, "checked": c.checked, "violations": c.violations} for c in checks]
    (run_dir / "report.json").write_text(json.dumps(outcome, indent=1))
    if args.report:
        args.report.write_text(json.dumps(outcome, indent=1))
    (run_dir / "calls.json").write_text(
        json.dumps([vars(call) for call in panel.calls], indent=1, default=str)
    )
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
