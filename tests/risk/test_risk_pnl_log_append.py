"""pnl_log.csv appended by the daily control (PNL_LOG_CSV): one line per change of the day's record,
never one per pass, and a file that can't be written never stops the control."""

from __future__ import annotations

import csv
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from risk import daily, pnl_log
from risk.daily import daily_control_step
from risk.models import DailyPnL
from risk.pnl_log import pnl_log_write
from tests.support.sim import market_order
from trading.rules import Side

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
HEADER = ",".join(pnl_log.PNL_LOG_COLUMNS)


@pytest.fixture(autouse=True)
def _fast_flatten(monkeypatch, redis_db):
    monkeypatch.setattr(daily, "FLATTEN_PAUSE_S", 0)
    monkeypatch.setattr(pnl_log, "_append_failing", False)


@pytest.fixture
def log_path(settings, tmp_path):
    settings.PNL_LOG_CSV = str(tmp_path / "pnl_log.csv")
    return tmp_path / "pnl_log.csv"


def lines(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_it_appends_the_baseline_the_outcome_and_the_days_final_figure_and_nothing_per_pass(
    sim, gateway, log_path
):
    daily_control_step(gateway=gateway, now=NOW)
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    for minutes, price in ((1, "97500.00"), (2, "96500.00"), (3, "96800.00")):  # figures move, no event
        sim.set_price("BTCUSDT", price)
        daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=minutes))
    assert len(lines(log_path)) == 1  # the baseline only

    sim.set_price("BTCUSDT", "95000.00")
    hit = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=4))
    daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=5))  # decided and flat: nothing
    stopped = DailyPnL.objects.get()
    next_day = daily_control_step(gateway=gateway, now=NOW + timedelta(hours=12, minutes=1))

    assert hit.acted and next_day.baseline_created
    assert log_path.read_text().splitlines()[0] == HEADER
    baseline, outcome, final, new_day = lines(log_path)
    account = stopped.account
    assert (baseline["date"], baseline["baseline_equity"], baseline["last_equity"], baseline["outcome"]) == (
        "2025-03-10",
        "10000.0000",
        "10000.0000",
        "open",
    )
    assert (outcome["outcome"], outcome["pnl_pct"]) == ("stop_hit", str(hit.pnl_pct))
    # The day's last figures (the pass after the flatten), written when the next day began.
    assert (final["date"], final["outcome"], final["last_equity"], final["account"]) == (
        "2025-03-10",
        "stop_hit",
        str(stopped.last_equity),
        account,
    )
    assert (new_day["date"], new_day["outcome"], new_day["baseline_equity"]) == (
        "2025-03-11",
        "open",
        str(stopped.last_equity),
    )
    # Each line reads as the export writes the row.
    export = pnl_log_write_text()
    assert export.splitlines()[1].split(",") == [final[column] for column in pnl_log.PNL_LOG_COLUMNS]


def pnl_log_write_text() -> str:
    import io

    out = io.StringIO()
    pnl_log_write(out=out)
    return out.getvalue()


def test_without_a_path_nothing_is_written(sim, gateway, settings, tmp_path):
    settings.PNL_LOG_CSV = ""
    assert daily_control_step(gateway=gateway, now=NOW).baseline_created
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_written_is_logged_once_and_the_daily_control_goes_on(
    sim, gateway, settings, tmp_path, caplog
):
    settings.PNL_LOG_CSV = str(tmp_path / "missing-directory" / "pnl_log.csv")
    market_order(gateway, "BTCUSDT", Side.BUY, "0.500", "97000", "t-long")
    caplog.set_level(logging.INFO, logger="risk.pnl_log")

    first = daily_control_step(gateway=gateway, now=NOW)
    sim.set_price("BTCUSDT", "95000.00")
    hit = daily_control_step(gateway=gateway, now=NOW + timedelta(minutes=1))

    assert first.baseline_created and hit.acted and hit.flatten.flat  # the control did its work
    assert DailyPnL.objects.get().outcome == "stop_hit"
    warnings = [r for r in caplog.records if r.getMessage().startswith("pnl_log_append_failed")]
    assert len(warnings) == 1  # two failed appends, one warning

    (tmp_path / "missing-directory").mkdir()  # fixed: the next change is written, and said
    daily_control_step(gateway=gateway, now=NOW + timedelta(days=1))
    assert (
        len(lines(tmp_path / "missing-directory" / "pnl_log.csv")) == 2
    )  # yesterday's final, today's baseline
    assert any(r.getMessage().startswith("pnl_log_append_restored") for r in caplog.records)
    assert Decimal(lines(tmp_path / "missing-directory" / "pnl_log.csv")[0]["pnl_pct"]) < Decimal("-5")
