"""Read-side queries of the risk app."""

from __future__ import annotations

from datetime import UTC, datetime

from core.status import StatusSnapshot
from risk.models import DailyPnL, RiskSettings
from risk.rules import limit_equities, utc_date
from trading.selectors import RiskLevels

WALLET_FIELDS = (
    "equity",
    "wallet_balance",
    "available_balance",
    "initial_margin",
    "maintenance_margin",
    "unrealised_pnl",
    "im_pct",
)


def engine_risk_levels() -> RiskLevels:
    """The levels the liquidation engine guards its entries with (handed over in `RiskConfig.ready`)."""
    risk = RiskSettings.load()
    return RiskLevels(
        equity_usdt=risk.equity_usdt,
        im_warn_pct=risk.im_warn_pct,
        im_block_pct=risk.im_reduce_pct,
        max_open_positions=risk.max_open_positions,
    )


def account_summary(status: StatusSnapshot) -> dict:
    """The account from the status snapshot (the worker's last read, never the exchange)
    with its age, the IM levels, and today's PnL against the daily target and stop."""
    risk = RiskSettings.load()
    account = status.account or {}
    at_ms = account.get("at_ms")
    day = DailyPnL.objects.filter(date=utc_date(status.at)).first()
    target_equity = stop_equity = None
    if day is not None:
        target_equity, stop_equity = limit_equities(
            baseline=day.baseline_equity, target_pct=risk.daily_target_pct, stop_pct=risk.daily_stop_pct
        )
    return {
        "available": bool(account),
        "error": status.account_problem,
        "at": None if at_ms is None else datetime.fromtimestamp(at_ms / 1000, tz=UTC),
        "age_s": None if status.account_age_s is None else round(status.account_age_s, 1),
        "stale": status.account_stale,
        **{name: account.get(name) for name in WALLET_FIELDS},
        "im_warn_pct": risk.im_warn_pct,
        "im_reduce_pct": risk.im_reduce_pct,
        "daily": {
            "date": utc_date(status.at),
            "baseline_equity": day and day.baseline_equity,
            "pnl_usdt": day and day.pnl_usdt,
            "pnl_pct": day and day.pnl_pct,
            "target_pct": risk.daily_target_pct,
            "stop_pct": risk.daily_stop_pct,
            "target_equity": None if target_equity is None else str(target_equity),
            "stop_equity": None if stop_equity is None else str(stop_equity),
            "outcome": day and day.outcome,
        },
    }
