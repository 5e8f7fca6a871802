"""Flatten the account: cancel every order, close every position reduce-only, verify.

One action, many callers: panic, the daily target/stop and Telegram /close all end
up here. Each round reads the positions afresh, so a close is always built from the
exact size and side on the exchange now (no 110017 from stale arithmetic), and each
close carries an orderLinkId derived from the run and the round, so a timed-out close
is found again by the gateway instead of being sent twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from trading.alerting import gateway_error_alert
from trading.bybit import BybitGateway, Position
from trading.errors import GatewayError, OrderOutcomeUnknown, ReduceOnlyRejected
from trading.models import Decision
from trading.rules.order_link_id import order_link_id
from trading.services import decision_record

logger = logging.getLogger(__name__)


@dataclass
class FlattenReport:
    run_key: str
    rounds: int = 0
    cancelled_orders: int = 0
    closes_sent: list[str] = field(default_factory=list)  # symbols
    errors: list[str] = field(default_factory=list)
    remaining_positions: list[str] = field(default_factory=list)
    remaining_orders: int = 0
    verified: bool = False  # the last round read positions and orders without an error

    @property
    def flat(self) -> bool:
        """Flat as the exchange itself reported it; an unreadable account is never flat."""
        return self.verified and not self.remaining_positions and not self.remaining_orders


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
    Blocking; call it from a worker thread or task, never inside a transaction.
    """
    wanted = None if symbols is None else frozenset(symbols)
    report = FlattenReport(run_key=run_key)
    refused: dict[tuple[str, int | None], GatewayError] = {}  # alerted once the flatten is over
    for round_number in range(1, max_rounds + 1):
        report.rounds = round_number
        report.errors.clear()
        _cancel_orders(gateway, wanted, report)
        for position in _positions(gateway, wanted, report) or []:
            link_id = order_link_id(
                strategy=strategy,
                symbol=position.symbol,
                decision_key=f"{run_key}:{round_number}",
                leg="close",
            )
            try:
                gateway.close_position(position=position, order_link_id=link_id)
                report.closes_sent.append(position.symbol)
            except OrderOutcomeUnknown:
                report.errors.append(f"{position.symbol}: outcome unknown")  # the next round re-reads
            except GatewayError as error:
                report.errors.append(f"{position.symbol}: {error.code} {error.message}")
                if not isinstance(error, ReduceOnlyRejected):  # 110017: already flat, not news
                    refused[(position.symbol, error.code)] = error
        remaining_positions = _positions(gateway, wanted, report)
        remaining_orders = _open_orders(gateway, wanted, report)
        report.verified = remaining_positions is not None and remaining_orders is not None
        report.remaining_positions = sorted(p.symbol for p in remaining_positions or [])
        report.remaining_orders = len(remaining_orders or [])
        if report.flat:
            break
        time.sleep(pause_s * round_number)
    outcome = Decision.Outcome.TAKEN if report.flat else Decision.Outcome.FAILED
    decision_record(
        strategy=strategy,
        action="flatten",
        outcome=outcome,
        reason_code="flat" if report.flat else "not_flat",
        details={
            "run_key": run_key,
            "rounds": report.rounds,
            "cancelled_orders": report.cancelled_orders,
            "closes_sent": report.closes_sent,
            "remaining_positions": report.remaining_positions,
            "remaining_orders": report.remaining_orders,
            "errors": report.errors,
            "verified": report.verified,
        },
    )
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


def _cancel_orders(gateway: BybitGateway, wanted, report: FlattenReport) -> None:
    try:
        if wanted is None:
            report.cancelled_orders += len(gateway.cancel_all_orders())
        else:
            for symbol in sorted(wanted):
                report.cancelled_orders += len(gateway.cancel_all_orders(symbol=symbol))
    except GatewayError as error:
        report.errors.append(f"cancel: {error.code} {error.message}")


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
