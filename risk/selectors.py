"""Read-side queries of the risk app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Q

from core.status import StatusSnapshot
from risk.models import UNKNOWN_ACCOUNT, ClosedPnl, DailyPnL, RiskSettings
from risk.rules import (
    PNL_STRATEGIES,
    PnlSum,
    day_start,
    limit_equities,
    pnl_sums_by_day,
    pnl_sums_total,
    utc_date,
)
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


# -- the daily record of the account trading now (a day has a row per account: risk.daily) --


def daily_rows_of_mode(mode: str):
    """The DailyPnL rows of this exchange mode's accounts, and the rows older than accounts
    ("unknown"): a reader never shows the simulator's day as the demo account's."""
    return DailyPnL.objects.filter(Q(account__startswith=f"{mode}:") | Q(account=UNKNOWN_ACCOUNT))


def daily_row_today(*, today: date, mode: str) -> DailyPnL | None:
    """Today's row of the account trading now: of this mode's rows, the one the daily control
    measured last (after a change of key mid-day, the new account's)."""
    return daily_rows_of_mode(mode).filter(date=today).order_by("-updated_at", "-id").first()


def daily_history_rows(*, mode: str, days: int) -> list[DailyPnL]:
    """This mode's last ``days`` days, one row a day (the one measured last), newest first."""
    rows = daily_rows_of_mode(mode).order_by("-date", "-updated_at", "-id")
    by_date: dict[date, DailyPnL] = {}
    for row in rows.iterator():
        if row.date not in by_date:
            if len(by_date) == days:
                break
            by_date[row.date] = row
    return list(by_date.values())


def account_summary(status: StatusSnapshot) -> dict:
    """The account from the status snapshot (the worker's last read, never the exchange)
    with its age, the IM levels, and today's PnL against the daily target and stop."""
    risk = RiskSettings.load()
    account = status.account or {}
    at_ms = account.get("at_ms")
    day = daily_row_today(today=utc_date(status.at), mode=status.exchange_mode)
    target_equity = stop_equity = None
    if day is not None:
        target_equity, stop_equity = limit_equities(
            baseline=day.baseline_equity,
            target_pct=risk.daily_target_pct,
            stop_pct=risk.daily_stop_pct,
            net_transfers=day.net_transfers,
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
            "account": day and day.account,
            "baseline_equity": day and day.baseline_equity,
            "net_transfers": day and day.net_transfers,
            "pnl_usdt": day and day.pnl_usdt,
            "pnl_pct": day and day.pnl_pct,
            "target_pct": risk.daily_target_pct,
            "stop_pct": risk.daily_stop_pct,
            "target_equity": None if target_equity is None else str(target_equity),
            "stop_equity": None if stop_equity is None else str(stop_equity),
            "outcome": day and day.outcome,
        },
    }


# -- realised PnL per strategy (ClosedPnl rows, written by risk.closed_pnl) ----------------

PNL_DAYS_DEFAULT = 30
PNL_DAYS_MAX = 90
PNL_TOTAL = "total"


def _pnl_rows(sums: dict[str, PnlSum]) -> list[dict]:
    """One row per strategy, then their total."""
    total = PnlSum(
        pnl=sum((part.pnl for part in sums.values()), PnlSum().pnl),
        fees=sum((part.fees for part in sums.values()), PnlSum().fees),
        closes=sum(part.closes for part in sums.values()),
    )
    return [
        {"strategy": strategy, "pnl": part.pnl, "fees": part.fees, "closes": part.closes}
        for strategy, part in [*sums.items(), (PNL_TOTAL, total)]
    ]


def realised_pnl(*, now: datetime, days: int = PNL_DAYS_DEFAULT) -> dict:
    """Realised PnL (net of fees) and the fees in it, per strategy (WL, PM, manual) and UTC day:
    ``daily`` for the last ``days`` days (today included, oldest first, every strategy every
    day), and the totals of today, the last 7 and the last 30 days. Decimals in USDT."""
    if not 1 <= days <= PNL_DAYS_MAX:
        raise ValueError(f"days must be 1-{PNL_DAYS_MAX}, got {days}")
    today = utc_date(now)
    span = max(days, 30)
    dates: list[date] = [today - timedelta(days=back) for back in range(span - 1, -1, -1)]
    rows = ClosedPnl.objects.filter(closed_at__gte=day_start(now) - timedelta(days=span - 1)).values_list(
        "closed_at", "strategy", "closed_pnl", "open_fee", "close_fee"
    )
    closes = [
        (utc_date(at), strategy, pnl, open_fee + close_fee) for at, strategy, pnl, open_fee, close_fee in rows
    ]
    by_day = pnl_sums_by_day(closes, days=dates)
    return {
        "date": today,
        "days": days,
        "strategies": list(PNL_STRATEGIES),
        "today": _pnl_rows(by_day[today]),
        "last_7_days": _pnl_rows(pnl_sums_total(by_day, since=today - timedelta(days=6))),
        "last_30_days": _pnl_rows(pnl_sums_total(by_day, since=today - timedelta(days=29))),
        "daily": [
            {"date": day, "strategy": strategy, "pnl": part.pnl, "fees": part.fees, "closes": part.closes}
            for day in dates[-days:]
            for strategy, part in by_day[day].items()
        ],
    }


@dataclass(frozen=True)
class WatchedDay:
    """What the risk watch compares its equity estimate with: today's row of one account."""

    date: date
    account: str
    baseline: Decimal
    net_transfers: Decimal  # money moved in minus out since the baseline: not PnL
    open: bool
    target_pct: Decimal
    stop_pct: Decimal
    im_warn_pct: Decimal
    im_reduce_pct: Decimal


def watched_day(*, account: str, today: date) -> WatchedDay | None:
    """Today's row of ``account`` with the limits in force; None before the day's first pass."""
    day = DailyPnL.objects.filter(date=today, account=account).first()
    if day is None:
        return None
    risk = RiskSettings.load()
    return WatchedDay(
        date=today,
        account=account,
        baseline=day.baseline_equity,
        net_transfers=day.net_transfers,
        open=day.outcome == DailyPnL.Outcome.OPEN,
        target_pct=risk.daily_target_pct,
        stop_pct=risk.daily_stop_pct,
        im_warn_pct=risk.im_warn_pct,
        im_reduce_pct=risk.im_reduce_pct,
    )
