"""`manage.py export_pnl`: pnl_log.csv from the DailyPnL rows."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from risk.models import DailyPnL

pytestmark = pytest.mark.django_db

HEADER = (
    "date,baseline_equity,last_equity,pnl_usdt,pnl_pct,high_equity,low_equity,outcome,account,net_transfers"
)


@pytest.fixture
def days():
    rows = [
        (date(2025, 3, 9), "10000", "10102.5", "102.5", "1.025", "10150", "9990.1234", "open"),
        (date(2025, 3, 10), "10102.5", "9590.1", "-512.4", "-5.0720", "10110", "9590.1", "stop_hit"),
        (date(2025, 3, 11), "9590.1", "10549.2", "959.1", "10.0009", "10549.2", "9580", "target_hit"),
    ]
    for day, baseline, last, pnl, pct, high, low, outcome in reversed(rows):
        DailyPnL.objects.create(
            date=day,
            baseline_equity=Decimal(baseline),
            last_equity=Decimal(last),
            pnl_usdt=Decimal(pnl),
            pnl_pct=Decimal(pct),
            high_equity=Decimal(high),
            low_equity=Decimal(low),
            outcome=outcome,
            # A withdrawal on the 10th: not in its PnL, written beside it.
            net_transfers=Decimal("-1500") if day == date(2025, 3, 10) else Decimal("0"),
        )


def test_the_csv_matches_the_rows_oldest_first(days, tmp_path):
    path = tmp_path / "pnl_log.csv"
    out = io.StringIO()

    call_command("export_pnl", "--output", str(path), stdout=out)

    assert path.read_text().splitlines() == [
        HEADER,
        "2025-03-09,10000.0000,10102.5000,102.5000,1.0250,10150.0000,9990.1234,open,unknown,0.0000",
        "2025-03-10,10102.5000,9590.1000,-512.4000,-5.0720,10110.0000,9590.1000,stop_hit,unknown,-1500.0000",
        "2025-03-11,9590.1000,10549.2000,959.1000,10.0009,10549.2000,9580.0000,target_hit,unknown,0.0000",
    ]
    assert "wrote 3 day(s)" in out.getvalue()
    # Every cell reads back as the stored value.
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            stored = DailyPnL.objects.get(date=date.fromisoformat(row["date"]))
            assert Decimal(row["pnl_pct"]) == stored.pnl_pct and row["outcome"] == stored.outcome


def test_dates_can_be_bounded_and_written_to_stdout(days):
    out = io.StringIO()
    call_command("export_pnl", "--output", "-", "--since", "2025-03-10", "--until", "2025-03-10", stdout=out)
    assert out.getvalue().splitlines() == [
        HEADER,
        "2025-03-10,10102.5000,9590.1000,-512.4000,-5.0720,10110.0000,9590.1000,stop_hit,unknown,-1500.0000",
    ]


def test_an_empty_record_gives_the_header_only(tmp_path):
    path = tmp_path / "pnl_log.csv"
    call_command("export_pnl", "-o", str(path), stdout=io.StringIO())
    assert path.read_text() == HEADER + "\n"


def test_a_reversed_range_is_refused(days):
    with pytest.raises(CommandError):
        call_command("export_pnl", "--since", "2025-03-11", "--until", "2025-03-09", stdout=io.StringIO())


@pytest.mark.django_db
def test_the_admin_action_exports_the_selected_days_in_the_same_format(admin_client):
    from datetime import date
    from decimal import Decimal

    from risk.models import DailyPnL

    for day in (date(2026, 11, 1), date(2026, 11, 2)):
        DailyPnL.objects.create(
            date=day,
            baseline_equity=Decimal("350"),
            last_equity=Decimal("357"),
            pnl_usdt=Decimal("7"),
            pnl_pct=Decimal("2"),
            high_equity=Decimal("360"),
            low_equity=Decimal("349"),
        )
    chosen = DailyPnL.objects.get(date=date(2026, 11, 2))
    response = admin_client.post(
        "/admin/risk/dailypnl/", {"action": "export_pnl_log_csv", "_selected_action": [chosen.pk]}
    )
    lines = response.content.decode().splitlines()
    assert (
        lines[0].startswith("date,baseline_equity") and len(lines) == 2 and lines[1].startswith("2026-11-02")
    )
