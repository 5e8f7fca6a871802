"""Flatten the account: cancel every order, close every position reduce-only, verify.

One action, many callers: panic, the daily target/stop and Telegram /close all end
up here. A round is three steps, each as parallel as the exchange allows:

1. one cancel-all for USDT linear (conditional and TP/SL orders too), while the positions
   are read (the first round; later rounds act on the previous round's verification);
2. the closes, biggest exposure first, on both of Bybit's order budgets at once and at
   their limit (``trading.flatten_closes``), each from the exact size, side and
   ``positionIdx`` just read, with an orderLinkId derived from the run, the round and
   the position, so a close without an answer is found again instead of sent twice;
3. the verification: positions, open orders (and the realised PnL of the closes) read
   in parallel. Flat ends the flatten; otherwise the next round starts at once on what
   that answer says is left. Nothing sleeps between rounds, except after a round in
   which the exchange did nothing for us (every call failed): then ``pause_s`` x the
   round number, a back-off, not a pace. Rate limits are waited out inside the round,
   until the reset time the exchange named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading.alerting import gateway_error_alert
from trading.bybit import BybitGateway, Position
from trading.errors import GatewayError
from trading.flatten_closes import CloseRecord, RoundCloser
from trading.models import Decision
from trading.services import decision_record

logger = logging.getLogger(__name__)

WORKERS = 16  # threads: 10 single closes + up to 5 batch requests in flight, or the reads
CANCEL_METHOD = "cancel_all_orders"
PHASES = ("cancel", "closes", "verification")
# Closed PnL rows are looked up from a little before the flatten began (clock skew).
CLOSED_PNL_LOOKBACK = timedelta(minutes=1)


@dataclass
class FlattenReport:
    run_key: str
    rounds: int = 0
    cancelled_orders: int = 0
    cancelled: list[str] = field(default_factory=list)  # orderLinkId (or orderId) of each cancelled order
    closes_sent: list[str] = field(default_factory=list)  # symbols
    closes: list[CloseRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    remaining_positions: list[str] = field(default_factory=list)
    remaining_orders: int = 0
    verified: bool = False  # the last round read positions and orders without an error
    rate_limited: int = 0  # orders the exchange refused with 10006 and that were sent again
    timings_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    ended_at: float | None = None  # time.perf_counter() when the last verification answered

    @property
    def flat(self) -> bool:
        """Flat as the exchange itself reported it; an unreadable account is never flat."""
        return self.verified and not self.remaining_positions and not self.remaining_orders

    def receipt(self) -> dict:
        """JSON-ready: what was cancelled, closed and left, the rounds and the phase timings."""
        return {
            "rounds": self.rounds,
            "cancelled_orders": self.cancelled_orders,
            "cancelled": list(self.cancelled),
            "closes": [close.as_dict() for close in self.closes],
            "remaining_positions": list(self.remaining_positions),
            "remaining_orders": self.remaining_orders,
            "rate_limited": self.rate_limited,
            "timings_ms": {phase: round(ms, 1) for phase, ms in self.timings_ms.items()},
            "verified": self.verified,
            "errors": list(self.errors),
        }


def positions_flatten(
    *,
    gateway: BybitGateway,
    strategy: str,
    run_key: str,
    symbols: Iterable[str] | None = None,
    max_rounds: int = 5,
    pause_s: float = 0.5,
) -> FlattenReport:
    """Cancel orders and close positions until the exchange shows none (or `max_rounds` pass).

    `symbols` limits the flatten to those symbols (None = the whole USDT account).
    `run_key` identifies this flatten (e.g. a panic id): it seeds the orderLinkIds.
    `pause_s` x the round number is the back-off after a round in which every exchange
    call failed (see the module docstring). Blocking; call it from a worker thread or
    task, never inside a transaction.
    """
    wanted = None if symbols is None else frozenset(symbols)
    report = FlattenReport(run_key=run_key)
    refused: dict[tuple[str, int | None], GatewayError] = {}  # alerted once the flatten is over
    since = datetime.now(UTC) - CLOSED_PNL_LOOKBACK
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="flatten") as pool:
        positions: list[Position] | None = None  # the fresh read this round acts on
        closer: RoundCloser | None = None
        orders_left = True  # unknown counts as some
        for round_number in range(1, max_rounds + 1):
            report.rounds = round_number
            report.errors.clear()
            done_before = (report.cancelled_orders, len(report.closes))

            started = time.perf_counter()
            cancel = pool.submit(_cancel_orders, gateway, wanted, report) if orders_left else None
            read = pool.submit(_positions, gateway, wanted, report) if positions is None else None
            # A fresh gateway loads the instrument table (qty steps) beside the first reads.
            table = None
            if gateway.instruments.loaded_at is None:
                table = pool.submit(_instruments, gateway, report)
            order_limit = cancel.result() if cancel else None
            if table:
                table.result()
            if read:
                positions = read.result()
            report.timings_ms["cancel"] += _ms_since(started)

            started = time.perf_counter()
            if positions:
                closer = RoundCloser(
                    gateway=gateway,
                    pool=pool,
                    strategy=strategy,
                    run_key=run_key,
                    round_number=round_number,
                    order_limit=order_limit,
                    previous=closer,
                )
                outcome = closer.run(positions)
                report.closes.extend(outcome.closes)
                report.closes_sent.extend(close.symbol for close in outcome.closes)
                report.errors.extend(outcome.errors)
                report.rate_limited += outcome.rate_limited
                refused.update(outcome.refused)
            report.timings_ms["closes"] += _ms_since(started)

            started = time.perf_counter()
            positions, orders = _verify(gateway, pool, wanted, report, since=since)
            report.timings_ms["verification"] += _ms_since(started)
            report.ended_at = time.perf_counter()
            report.verified = positions is not None and orders is not None
            report.remaining_positions = sorted(p.symbol for p in positions or [])
            report.remaining_orders = len(orders or [])
            if report.flat:
                break
            orders_left = orders is None or bool(orders)
            nothing_done = done_before == (report.cancelled_orders, len(report.closes))
            if nothing_done and report.errors and round_number < max_rounds:
                time.sleep(pause_s * round_number)  # the exchange did nothing for us: back off
    # The receipt lists closes as they were meant to go out: largest exposure first.
    report.closes.sort(key=lambda close: -Decimal(close.exposure))
    _journal(report, strategy=strategy, run_key=run_key)
    # After the rounds, never between them: a slow Telegram must not slow a panic.
    for (symbol, _code), error in refused.items():
        gateway_error_alert(error, order=f"{strategy} flatten close", symbol=symbol)
    if not report.flat:
        logger.error(
            "flatten_incomplete run_key=%s verified=%s positions=%s orders=%d",
            run_key,
            report.verified,
            ",".join(report.remaining_positions),
            report.remaining_orders,
        )
    return report


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _journal(report: FlattenReport, *, strategy: str, run_key: str) -> None:
    decision_record(
        strategy=strategy,
        action="flatten",
        outcome=Decision.Outcome.TAKEN if report.flat else Decision.Outcome.FAILED,
        reason_code="flat" if report.flat else "not_flat",
        details={"run_key": run_key, "closes_sent": report.closes_sent, **report.receipt()},
    )


def _cancel_orders(gateway: BybitGateway, wanted, report: FlattenReport) -> int | None:
    """Cancel every order (one call for the account, one per symbol when limited); returns the
    order-write limit the answer named (``X-Bapi-Limit``), the closes' first budget."""
    try:
        if wanted is None:
            refs = gateway.cancel_all_orders()
        else:
            refs = [ref for symbol in sorted(wanted) for ref in gateway.cancel_all_orders(symbol=symbol)]
    except GatewayError as error:
        report.errors.append(f"cancel: {error.code} {error.message}")
        return None
    report.cancelled_orders += len(refs)
    report.cancelled.extend(ref.order_link_id or ref.order_id for ref in refs)
    status = gateway.rate_limit_status(CANCEL_METHOD)
    return status.limit if status is not None else None


def _instruments(gateway: BybitGateway, report: FlattenReport) -> None:
    try:
        gateway.instruments.refresh()
    except GatewayError as error:
        report.errors.append(f"instruments: {error.code} {error.message}")


def _positions(gateway: BybitGateway, wanted, report: FlattenReport) -> list[Position] | None:
    """The positions to close, or None when the exchange could not be read."""
    try:
        positions = gateway.positions()
    except GatewayError as error:
        report.errors.append(f"positions: {error.code} {error.message}")
        return None
    return [p for p in positions if wanted is None or p.symbol in wanted]


def _open_orders(gateway: BybitGateway, wanted, report: FlattenReport):
    try:
        orders = gateway.open_orders()
    except GatewayError as error:
        report.errors.append(f"orders: {error.code} {error.message}")
        return None
    return [o for o in orders if o.is_open and (wanted is None or o.symbol in wanted)]


def _verify(gateway: BybitGateway, pool: Executor, wanted, report: FlattenReport, *, since: datetime):
    """Positions and open orders read in parallel, and, beside them, the realised PnL of closes
    that don't have it yet (where the exchange already reports it)."""
    positions = pool.submit(_positions, gateway, wanted, report)
    orders = pool.submit(_open_orders, gateway, wanted, report)
    pending = {close.order_id: close for close in report.closes if close.order_id and close.avg_price is None}
    closed_pnl = pool.submit(gateway.closed_pnl, start=since, limit=100, max_pages=5) if pending else None
    result = positions.result(), orders.result()
    if closed_pnl is not None:
        try:
            rows = closed_pnl.result()
        except GatewayError as error:
            # The receipt lacks prices then; the flatten itself is not affected.
            logger.warning("flatten_closed_pnl_unread code=%s error=%s", error.code, error.message)
            rows = []
        for row in rows:
            close = pending.get(row.order_id)
            if close is not None:
                close.avg_price = str(row.avg_exit_price)
                close.realised_pnl = str(row.closed_pnl)
    return result
