"""Portfolio momentum (PM): the allowlist's changes from one scan to the next, journaled by each
scan (action ``allowlist``, ``allowlist_changed``: symbols added and removed), as the old bot
logged them. The enabled list each scan saw is kept in ``PortfolioState.allowlist_seen``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from portfolio.common import TAKEN, journal_write
from portfolio.models import AllowlistEntry, PortfolioState

if TYPE_CHECKING:  # the scan step owns its result and calls in here
    from portfolio.scan import ScanResult

logger = logging.getLogger(__name__)


def allowlist_changes(state: PortfolioState) -> tuple[list[str], list[str]]:
    """Enabled allowlist symbols added and removed since the previous scan."""
    now_listed = set(AllowlistEntry.objects.filter(enabled=True).values_list("symbol", flat=True))
    before = set(state.allowlist_seen or [])
    return sorted(now_listed - before), sorted(before - now_listed)


def allowlist_changes_journal(*, state: PortfolioState, key: str, now: datetime, result: ScanResult) -> None:
    """Journal the allowlist's changes since the previous scan (as the old bot logged them) and
    remember this scan's list."""
    added, removed = allowlist_changes(state)
    result.allowlist_added, result.allowlist_removed = added, removed
    if not (added or removed):
        return
    listed = sorted(set(state.allowlist_seen or []) - set(removed) | set(added))
    PortfolioState.objects.filter(pk=state.pk).update(allowlist_seen=listed)
    journal_write(
        action="allowlist",
        outcome=TAKEN,
        reason_code="allowlist_changed",
        details={"scan_key": key, "added": added, "removed": removed, "allowlist": listed},
        now=now,
    )
    logger.info("pm_allowlist_changed added=%s removed=%s", ",".join(added), ",".join(removed))
