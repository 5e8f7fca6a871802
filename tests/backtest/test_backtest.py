"""The backtest on the shipped sample day: the live rules, the simulator's fills, the report."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from decimal import Decimal

import pytest
from django.core.management import call_command

from controlpanel.backtest.config import backtest_config
from controlpanel.backtest.report import summary, summary_json
from controlpanel.backtest.runner import Backtest, backtest_directory
from simulator.replay import load
from tests.support import REPO

SAMPLE = REPO / "sample_data"
DEMO_COINS = REPO / "controlpanel" / "demo" / "coins.json"

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    return backtest_config(coins_path=DEMO_COINS)


def test_the_same_run_twice_gives_byte_identical_summaries(demo):
    coins, risk = demo
    first = summary_json(summary(backtest_directory(SAMPLE, coins=coins, risk=risk)))
    second = summary_json(summary(backtest_directory(SAMPLE, coins=coins, risk=risk)))
    assert first == second
    assert json.loads(first)["orders"] > 0


def test_equity_and_fees_agree_with_the_simulators_wallet(demo):
    coins, risk = demo
    data = load(SAMPLE)
    backtest = Backtest(data=data, coins=coins, risk=risk)
    result = backtest.run()
    wallet = backtest.exchange.totals()
    executions = backtest.exchange.account.executions
    assert len(executions) >= 2 * len([t for t in result.trades if t.reason != "open"])
    assert result.fees == sum(e.fee for e in executions) == sum(t.fees for t in result.trades)
    assert result.end_equity == wallet.margin_balance
    # Every cent of the equity's change is in some trade: gross PnL less fees.
    assert result.end_equity - result.start_equity == sum(t.net for t in result.trades)
    assert result.wallet_balance == wallet.wallet_balance


def test_a_run_makes_no_reference_cycles_so_the_cycle_collector_can_stay_off(demo):
    coins, risk = demo
    gc.collect()
    gc.disable()
    try:
        # Low thresholds: most liquidations reach the market, dozens of entries and exits.
        busy = {symbol: replace(rule, min_liquidation_usdt=Decimal("1")) for symbol, rule in coins.items()}
        result = backtest_directory(SAMPLE, coins=busy, risk=risk)
        assert len(result.orders) > 20
        del result
        garbage = _collected()
    finally:
        gc.enable()
    assert gc.isenabled()
    assert [_describe(item) for item in garbage if _made_by_the_project(item)] == []


# The collector is process-wide: in the whole suite, threads left by earlier tests (a test
# worker, an engine thread winding down) leave cycles of their own while it is off. What
# counts is what the run made: objects of the project's classes, and its frames and functions.
PROJECT_PACKAGES = ("controlpanel", "simulator", "trading", "risk", "core", "portfolio", "panic")


def _collected() -> list:
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def _made_by_the_project(item) -> bool:
    code = getattr(item, "f_code", None) or getattr(item, "__code__", None)
    if code is not None:
        return code.co_filename.startswith(str(REPO)) and "/tests/" not in code.co_filename
    return (getattr(type(item), "__module__", "") or "").split(".")[0] in PROJECT_PACKAGES


def _describe(item) -> str:
    return f"{type(item).__module__}.{type(item).__qualname__}"


def test_every_order_is_the_decisions_qty_filled_within_the_venues_slippage(demo):
    coins, risk = demo
    result = backtest_directory(SAMPLE, coins=coins, risk=risk)
    assert result.orders
    for order in result.orders:
        decided, filled = Decimal(order["decision_price"]), Decimal(order["fill_price"])
        # 1 bp against the taker, rounded to the tick away from us: a tick more at most.
        assert abs(filled - decided) <= decided * Decimal("0.0001") + Decimal("0.01")
        assert order["order_link_id"].startswith("wl-entry-")


def test_the_daily_stop_closes_everything_and_stops_entries_for_the_day(demo):
    coins, risk = demo
    tight = replace(risk, daily_stop_pct=Decimal("0.001"))
    result = backtest_directory(SAMPLE, coins=coins, risk=tight)
    figures = summary(result)
    assert figures["limit_days"] == ["2025-01-27"]
    assert figures["exit_reasons"].get("daily_stop", 0) >= 1
    assert figures["skip_reasons"]["disabled_for_day"] > 0
    assert figures["days"][0]["outcome"] == "stop_hit"


def test_the_command_writes_an_offline_page_and_the_summary_beside_it(tmp_path, capsys):
    out = tmp_path / "report.html"
    call_command("backtest", data=SAMPLE, coins=DEMO_COINS, out=out, no_progress=True)
    page = out.read_text()
    assert '<canvas id="equity-chart">' in page
    assert "Chart.js v4" in page or "chart.js" in page.lower()
    assert 'src="http' not in page  # nothing to fetch: it opens offline
    figures = json.loads(out.with_suffix(".json").read_text())
    assert figures["liquidations"] == 2186
    assert figures["trade_list"][0]["liquidation"]["event_id"]
    assert "win %" in capsys.readouterr().out


def test_a_time_window_trades_only_inside_it(demo):
    coins, risk = demo
    from_ms, to_ms = 1737936000000 + 2 * 3_600_000, 1737936000000 + 4 * 3_600_000
    result = backtest_directory(SAMPLE, coins=coins, risk=risk, from_ms=from_ms, to_ms=to_ms)
    assert 0 < result.liquidations < 2186
    assert all(from_ms <= order["time_ms"] <= to_ms for order in result.orders)
    assert result.equity_curve[0][0] >= from_ms


def test_without_coins_it_trades_the_databases_coins_and_changes_nothing(tmp_path):
    from trading.models import Coin

    call_command("import_config", coins=DEMO_COINS)
    Coin.objects.exclude(symbol="XRPUSDT").delete()
    out = tmp_path / "report.html"
    call_command("backtest", data=SAMPLE, out=out, no_progress=True)
    figures = json.loads(out.with_suffix(".json").read_text())
    assert set(figures["coins"]) == {"XRPUSDT"}
    assert figures["skip_reasons"]["not_configured"] > 1000
    assert list(Coin.objects.values_list("symbol", flat=True)) == ["XRPUSDT"]


def test_settings_json_sets_the_risk_levels_through_manage_py(tmp_path):
    from manage import import_config_arguments

    argv = ["manage.py", "backtest", "--data", "x", "--settings", "s.json"]
    assert import_config_arguments(argv)[-2:] == ["--settings-file", "s.json"]
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"risk_management": {"daily_stop_pct": 0.001}}))
    out = tmp_path / "report.html"
    call_command(
        "backtest", data=SAMPLE, coins=DEMO_COINS, settings_file=settings_file, out=out, no_progress=True
    )
    assert json.loads(out.with_suffix(".json").read_text())["limit_days"] == ["2025-01-27"]
