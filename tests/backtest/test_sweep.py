"""The sweep: its grid syntax, the ranking's objective, and a best coins.json import_config takes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from controlpanel.backtest.sweep import parse_grid
from tests.support import REPO
from trading.models import Coin

SAMPLE = REPO / "sample_data"
DEMO_COINS = REPO / "controlpanel" / "demo" / "coins.json"


@pytest.mark.parametrize(
    "text, grid",
    [
        (
            "long_offset_pct=0.2:1.0:0.2,min_liquidation_usdt=500,1000,5000",
            {
                "long_offset_pct": ["0.2", "0.4", "0.6", "0.8", "1.0"],
                "min_liquidation_usdt": ["500", "1000", "5000"],
            },
        ),
        # The old coins.json names, as the issue writes them.
        (
            "long_vwap_offset=0.5,lick_value=100:300:100",
            {"long_offset_pct": ["0.5"], "min_liquidation_usdt": ["100", "200", "300"]},
        ),
        ("leverage=5,10", {"leverage": ["5", "10"]}),
    ],
)  # fmt: skip
def test_it_reads_ranges_and_lists_under_either_name(text, grid):
    assert parse_grid(text) == {name: [Decimal(v) for v in values] for name, values in grid.items()}


@pytest.mark.parametrize("text", ["symbol=BTC", "long_offset_pct=1.0:0.2:0.2", "0.5", "lick_value="])
def test_it_refuses_what_it_cannot_sweep(text):
    with pytest.raises(ValueError):
        parse_grid(text)


@pytest.mark.django_db
def test_a_sweep_ranks_by_net_pnl_within_the_drawdown_limit_and_writes_an_importable_best(tmp_path, capsys):
    out = tmp_path / "sweep.html"
    call_command(
        "backtest",
        data=SAMPLE,
        coins=DEMO_COINS,
        out=out,
        sweep="long_vwap_offset=0.2,0.6,lick_value=1000,5000",
        max_drawdown="0.3",  # 30 USDT of 10 000
        workers=2,
    )
    printed = capsys.readouterr().out
    assert "objective: highest net PnL with max drawdown <= 0.3 % of 10000 USDT (30.0 USDT)" in printed
    rows = json.loads((tmp_path / "sweep-sweep.json").read_text())
    assert len(rows) == 4
    within = [row for row in rows if row["within_limit"]]
    assert 0 < len(within) < len(rows)  # the limit splits this grid
    assert all(Decimal(row["max_drawdown"]) <= 30 for row in within)
    assert rows[: len(within)] == within  # every point within the limit ranks first
    nets = [Decimal(row["net_pnl"]) for row in within]
    assert nets == sorted(nets, reverse=True)
    assert (tmp_path / "sweep.html").exists() and (tmp_path / "sweep.json").exists()

    best = tmp_path / "sweep-best-coins.json"
    call_command("import_config", coins=best, replace=True)
    point = rows[0]["point"]
    assert {str(c.long_offset_pct.normalize()) for c in Coin.objects.all()} == {point["long_offset_pct"]}
    assert {c.min_liquidation_usdt for c in Coin.objects.all()} == {Decimal(point["min_liquidation_usdt"])}
    assert Coin.objects.count() == len(json.loads(DEMO_COINS.read_text()))
