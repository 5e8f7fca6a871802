"""Portfolio momentum (PM) by hand: ``manage.py portfolio_scan`` runs one trail pass (exits, adds)
and one scan (entries) now, whether a scan is due or not, under the same book lock and with the
same journal as the Celery tasks, and says what it did and why.

``dry_run`` decides the same way and reports it, but sends no order and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from portfolio.common import STRATEGY
from portfolio.scan import ScanResult, portfolio_scan_step
from portfolio.trail import TrailResult, portfolio_trail_step
from trading.bybit import BybitGateway
from trading.models import Decision

# Journal details worth a line, in this order.
_DETAIL_KEYS = (
    "momentum_pct",
    "min_momentum_pct",
    "rank",
    "qty",
    "price",
    "notional_usdt",
    "filled_qty",
    "fill_price",
    "stop_price",
    "high_water_price",
    "distance",
    "added",
    "removed",
    "error",
)


@dataclass
class ManualScan:
    trail: TrailResult
    scan: ScanResult
    journal: list[Decision] = field(default_factory=list)  # what this run journaled (not in a dry run)
    dry_run: bool = False


def portfolio_scan_now(*, gateway: BybitGateway, now: datetime, dry_run: bool = False) -> ManualScan:
    """One trail pass, then one scan, now. The exchange errors of either step propagate."""
    before = Decision.objects.order_by("-id").values_list("id", flat=True).first() or 0
    trail = portfolio_trail_step(gateway=gateway, now=now, dry_run=dry_run)
    scan = portfolio_scan_step(gateway=gateway, now=now, force=True, dry_run=dry_run)
    journal = []
    if not dry_run:
        journal = list(
            Decision.objects.filter(strategy=STRATEGY, id__gt=before, created_at=now).order_by("id")
        )
    return ManualScan(trail=trail, scan=scan, journal=journal, dry_run=dry_run)


def manual_scan_lines(run: ManualScan) -> list[str]:
    """What the run did and why, one line each: entries, adds, exits, each skip with its reason code."""
    lines = []
    if run.dry_run:
        lines.append("Dry run: decided only; no order sent, nothing written.")
    lines += _status_lines(run)
    if run.dry_run:
        lines += _dry_trail_lines(run.trail) + _dry_scan_lines(run.scan)
    else:
        lines += [_journal_line(decision) for decision in run.journal if decision.action != "scan"]
    if len(lines) == (2 if run.dry_run else 1) and run.scan.status == "scanned":
        lines.append("Nothing to do.")
    return lines


def _status_lines(run: ManualScan) -> list[str]:
    trail, scan = run.trail, run.scan
    trail_text = {
        "ran": "checked PM's positions",
        "idle": "PM holds no position",
        "busy": "another pass held the PM book; try again",
    }.get(trail.status, trail.status)
    scan_text = {
        "scanned": f"scanned the allowlist ({scan.scan_key})",
        "disabled": "PM is disabled (admin, Portfolio settings, Enabled): nothing entered",
        "busy": "another pass held the PM book; try again",
        "trading_not_allowed": "trading is not allowed (panic lock, halt or daily stop): nothing entered",
    }.get(scan.status, scan.status)
    adds = f"; adds off ({trail.adds_blocked})" if trail.adds_blocked and trail.status == "ran" else ""
    return [f"Trail: {trail_text}{adds}. Scan: {scan_text}."]


def _journal_line(decision: Decision) -> str:
    details = decision.details or {}
    figures = [
        f"{key} {_text(details[key])}" for key in _DETAIL_KEYS if details.get(key) not in (None, "", [])
    ]
    where = f" {decision.symbol}" if decision.symbol else ""
    tail = f" ({', '.join(figures)})" if figures else ""
    return f"{decision.action}{where}: {decision.outcome} {decision.reason_code}{tail}"


def _dry_trail_lines(trail: TrailResult) -> list[str]:
    lines = [f"exit {symbol}: would sell PM's share, {trail.why[symbol]}" for symbol in trail.exited]
    lines += [f"add {symbol}: would buy one more leg, {trail.why[symbol]}" for symbol in trail.added]
    lines += [f"release {symbol}: {trail.why[symbol]}" for symbol in trail.closed_elsewhere]
    return lines


def _dry_scan_lines(scan: ScanResult) -> list[str]:
    lines = []
    if scan.allowlist_added or scan.allowlist_removed:
        lines.append(
            f"allowlist since the last scan: added {_text(scan.allowlist_added) or '-'}, "
            f"removed {_text(scan.allowlist_removed) or '-'}"
        )
    for symbol in scan.entered:
        entry = scan.entries[symbol]
        lines.append(
            f"enter {symbol}: would buy {entry['qty']} at {entry['price']} ({entry['notional_usdt']} USDT), "
            f"top_momentum (momentum_pct {entry['momentum_pct']}, rank {entry['rank']})"
        )
    for symbol, reason in sorted(scan.skipped.items()):
        momentum = scan.momenta.get(symbol)
        lines.append(
            f"enter {symbol}: skipped {reason}" + (f" (momentum_pct {momentum})" if momentum else "")
        )
    return lines


def _text(value) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value)
