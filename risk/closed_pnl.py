"""Realised PnL per strategy: Bybit's closed PnL, stored as ``ClosedPnl`` rows and attributed
to the strategy that owned the closed position (WL, PM or manual).

The worker runs ``closed_pnl_sync_step`` every 30 s (``risk.closed_pnl_sync``); the web
process, the API and Telegram read the rows only (``risk.selectors.realised_pnl``).

What Bybit gives: ``/v5/position/closed-pnl`` has one row per closing order, named by its
``orderId`` only (no ``orderLinkId``), with the closed size, the average entry and exit
prices and values, and ``closedPnl`` net of the open fee, the close fee and funding.

Sync: every row from the newest stored ``closed_at`` minus ``SYNC_OVERLAP`` (a row Bybit
lists a little late is still caught), or ``BACKFILL`` back on the first run, in windows of
at most 7 days (Bybit's limit per query), following the cursor to the last page. Rows are
upserted by ``orderId``: a row seen again with the same figures is left alone, so a re-sync
writes nothing and makes no further exchange call. New rows are taken oldest first, at most
``LOOKUPS_PER_PASS`` per pass; the rest wait for the next pass.

The closing order's ``orderLinkId`` (the one exact way to know who sent it): for each new
or changed row, the order is read by its ``orderId`` from ``/v5/order/history``
(``get_order_by_id``; one call per close, not per pass). The journal does not store Bybit's
order ids, only our ``orderLinkId``s, so it cannot answer this. The same order gives the
close fee: its ``cumExecFee`` (its share, if it also opened the other way).
The open fee is what closedPnl nets out besides it: gross - closedPnl - close fee, gross
being exit - entry value for a long (the reverse for a short); it includes any funding.

Attribution (``risk.rules.closed_pnl_strategy``): a closing order with our ``wl-``/``pm-``
prefix names its strategy. Otherwise (Bybit's TP/SL orders carry no ``orderLinkId``;
``risk-`` and ``panic-`` closes and closes by hand close someone else's position) the
position's owner is the strategy of the latest taken WL/PM entry in the journal on that
symbol and side at or before the close, and ``manual`` when there is none. A manual
position opened on a symbol WL or PM traded earlier on the same side is therefore counted
as theirs: the journal cannot tell them apart.

An exchange error ends the pass with one warning line (no traceback) and writes nothing;
the next pass starts from the same place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from risk.models import ClosedPnl
from risk.rules import (
    ENTRY_ACTIONS,
    OWNER_PREFIXES,
    close_fee_share,
    closed_pnl_strategy,
    closed_side,
    open_fee_of,
)
from trading.bybit import BybitGateway
from trading.bybit import ClosedPnl as VenueClosedPnl
from trading.errors import GatewayError
from trading.models import Decision

logger = logging.getLogger(__name__)

SYNC_OVERLAP = timedelta(minutes=10)
VENUE_TIME_STEP = timedelta(milliseconds=1)  # the resolution of Bybit's times
BACKFILL = timedelta(days=90)  # as far back as /api/pnl looks
WINDOW = timedelta(days=7)  # Bybit's longest closed-pnl query
PAGE_LIMIT = 100  # Bybit's largest page
# Closing orders read per pass (one order-history call each; Bybit allows 50/s): a first
# backfill of a busy account takes a few passes rather than one pass longer than the beat.
LOOKUPS_PER_PASS = 200
# The journal's strategy words for the owners ClosedPnl knows.
_JOURNAL_OWNERS = {
    Decision.Strategy.LIQUIDATION: OWNER_PREFIXES["wl"],
    Decision.Strategy.PORTFOLIO: OWNER_PREFIXES["pm"],
}


@dataclass
class ClosedPnlSyncResult:
    found_work: bool = False
    fetched: int = 0
    created: int = 0
    updated: int = 0
    deferred: int = 0  # new rows left for the next pass (LOOKUPS_PER_PASS)
    error: str = ""

    def summary(self) -> dict:
        return {
            "found_work": self.found_work,
            "fetched": self.fetched,
            "created": self.created,
            "updated": self.updated,
            "deferred": self.deferred,
            "error": self.error,
        }


def closed_pnl_fetch(
    *, gateway: BybitGateway, start: datetime, now: datetime, page_limit: int = PAGE_LIMIT
) -> list[VenueClosedPnl]:
    """Every closed-PnL row from ``start`` to now, in 7-day windows, each to its last page;
    one row per ``orderId`` (a row on a window's edge comes back twice)."""
    rows: dict[str, VenueClosedPnl] = {}
    window_start = start
    while True:
        if now - window_start > WINDOW:
            page = gateway.closed_pnl(
                start=window_start, end=window_start + WINDOW, limit=page_limit, max_pages=None
            )
        else:
            # Only a start: Bybit answers start .. start + 7 days, so nothing past "now" is cut off.
            page = gateway.closed_pnl(start=window_start, limit=page_limit, max_pages=None)
        for row in page:
            rows[row.order_id] = row
        if now - window_start <= WINDOW:
            return list(rows.values())
        window_start += WINDOW


def _unchanged(stored: ClosedPnl, row: VenueClosedPnl) -> bool:
    return (
        stored.closed_pnl == row.closed_pnl
        and stored.closed_qty == row.closed_size
        and stored.closed_at == row.updated_at
    )


def journal_owner(*, symbol: str, side: str, closed_at: datetime) -> str | None:
    """WL or PM: whose taken entry on ``symbol`` and ``side`` is the latest at or before
    ``closed_at``; None when the journal has none.

    Bybit's times are whole milliseconds and the journal's microseconds: an entry journaled
    in the close's own millisecond (a close filled within a millisecond of the entry's row)
    is before it, not after."""
    entry = (
        Decision.objects.filter(
            strategy__in=list(_JOURNAL_OWNERS),
            outcome=Decision.Outcome.TAKEN,
            symbol=symbol,
            action__in=ENTRY_ACTIONS[side],
            created_at__lt=closed_at + VENUE_TIME_STEP,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    return None if entry is None else _JOURNAL_OWNERS[entry.strategy]


def closed_pnl_fields(*, gateway: BybitGateway, row: VenueClosedPnl) -> dict:
    """A ``ClosedPnl`` row's fields from Bybit's row and its closing order (one exchange call)."""
    side = closed_side(row.side)
    order = gateway.get_order_by_id(order_id=row.order_id, symbol=row.symbol)
    # Not found (Bybit keeps filled orders two years, so hardly ever): no orderLinkId, and
    # the whole of the fees counts as the open fee.
    link_id = order.order_link_id if order is not None else ""
    close_fee = Decimal("0")
    if order is not None:
        close_fee = close_fee_share(
            order_fee=order.cum_exec_fee, order_qty=order.cum_exec_qty, closed_qty=row.closed_size
        )
    entry_value = row.cum_entry_value
    if entry_value is None:
        entry_value = row.avg_entry_price * row.closed_size
    exit_value = row.cum_exit_value
    if exit_value is None:
        exit_value = row.avg_exit_price * row.closed_size
    return {
        "symbol": row.symbol,
        "side": side,
        "closed_qty": row.closed_size,
        "avg_entry_price": row.avg_entry_price,
        "avg_exit_price": row.avg_exit_price,
        "closed_pnl": row.closed_pnl,
        "open_fee": open_fee_of(
            side=side,
            entry_value=entry_value,
            exit_value=exit_value,
            closed_pnl=row.closed_pnl,
            close_fee=close_fee,
        ),
        "close_fee": close_fee,
        "strategy": closed_pnl_strategy(
            closing_link_id=link_id,
            journal_owner=journal_owner(symbol=row.symbol, side=side, closed_at=row.updated_at),
        ),
        "order_link_id": link_id,
        "closed_at": row.updated_at,
    }


def closed_pnl_sync_step(
    *,
    gateway: BybitGateway,
    now: datetime,
    page_limit: int = PAGE_LIMIT,
    lookups_per_pass: int = LOOKUPS_PER_PASS,
) -> ClosedPnlSyncResult:
    """Fetch closed PnL since the newest stored row (minus the overlap), read the closing order
    of each new or changed row, and upsert them by ``orderId``."""
    newest = ClosedPnl.objects.aggregate(newest=Max("closed_at"))["newest"]
    start = now - BACKFILL if newest is None else newest - SYNC_OVERLAP
    result = ClosedPnlSyncResult()
    try:
        rows = closed_pnl_fetch(gateway=gateway, start=start, now=now, page_limit=page_limit)
        rows = [row for row in rows if row.order_id and row.updated_at is not None]
        result.fetched = len(rows)
        stored = ClosedPnl.objects.in_bulk([row.order_id for row in rows], field_name="order_id")
        todo = sorted(
            (row for row in rows if row.order_id not in stored or not _unchanged(stored[row.order_id], row)),
            key=lambda row: row.updated_at,
        )
        # Oldest first and at most LOOKUPS_PER_PASS: the newest stored row is where the next
        # pass starts, so a long backfill goes on from there instead of skipping anything.
        result.deferred = max(len(todo) - lookups_per_pass, 0)
        fresh = {row.order_id: closed_pnl_fields(gateway=gateway, row=row) for row in todo[:lookups_per_pass]}
    except GatewayError as error:
        result.error = f"{type(error).__name__} (code {error.code}): {error.message}"[:300]
        logger.warning("closed_pnl_sync_failed error=%s code=%s", type(error).__name__, error.code)
        return result
    # No exchange call from here on: the rows are written in one short transaction.
    with transaction.atomic():
        for order_id, fields in fresh.items():
            _, created = ClosedPnl.objects.update_or_create(order_id=order_id, defaults=fields)
            if created:
                result.created += 1
            else:
                result.updated += 1
    result.found_work = bool(fresh)
    if fresh:
        logger.info(
            "closed_pnl_synced fetched=%d created=%d updated=%d deferred=%d",
            result.fetched,
            result.created,
            result.updated,
            result.deferred,
        )
    return result
