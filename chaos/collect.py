"""After the run: the plain records the invariants need, from the simulator's own record,
the database, the panel's answers and the logs. Needs Django set up (the driver's)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from chaos.records import Fill, Filters, JournalRow, PositionRow, SentOrder, Window


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def sent_orders(record: dict) -> list[SentOrder]:
    return [
        SentOrder(
            link_id=row["orderLinkId"],
            symbol=row["symbol"],
            side=row["side"],
            qty=Decimal(row["qty"] or "0"),
            reduce_only=bool(row["reduceOnly"]),
            received_ms=row["receivedNs"] // 1_000_000,
            reject_code=row["rejectCode"],
            cum_qty=Decimal(row["cumExecQty"] or "0"),
            avg_price=Decimal(row["avgPrice"] or "0"),
        )
        for row in record["orders"]
    ]


def fills(record: dict) -> list[Fill]:
    return [
        Fill(
            link_id=row["orderLinkId"],
            symbol=row["symbol"],
            side=row["side"],
            qty=Decimal(row["qty"]),
            time_ms=row["timeMs"],
            reduce_only=bool(row["reduceOnly"]),
            stop_order_type=row["stopOrderType"],
        )
        for row in record["executions"]
    ]


def instrument_filters(rows: Iterable[dict]) -> dict[str, Filters]:
    return {
        row["symbol"]: Filters(
            qty_step=Decimal(row["lotSizeFilter"]["qtyStep"]),
            min_qty=Decimal(row["lotSizeFilter"]["minOrderQty"]),
            min_notional=Decimal(row["lotSizeFilter"].get("minNotionalValue") or "0"),
        )
        for row in rows
    }


def exchange_positions(state: dict) -> list[PositionRow]:
    return [
        PositionRow(
            row["symbol"],
            row["side"],
            Decimal(row["size"]),
            row.get("takeProfit", ""),
            row.get("stopLoss", ""),
        )
        for row in state["positions"]
        if Decimal(row["size"] or "0")
    ]


SIDES = {"long": "Buy", "short": "Sell"}  # the panel's words for Bybit's position sides


def panel_positions(body: dict) -> list[PositionRow]:
    rows = body.get("list", []) if isinstance(body, dict) else body
    return [
        PositionRow(
            row["symbol"],
            SIDES.get(row["side"], row["side"]),
            Decimal(row["size"]),
            row.get("take_profit") or "",
            row.get("stop_loss") or "",
        )
        for row in rows
    ]


def order_key(symbol: str, side: str, stop_order_type: str, link_id: str) -> str:
    return f"{symbol} {side} {stop_order_type or '-'} {link_id or '-'}"


def exchange_order_keys(gateway) -> list[str]:
    return sorted(
        order_key(order.symbol, order.side.value, order.stop_order_type, order.order_link_id)
        for order in gateway.open_orders()
        if order.is_open
    )


def panel_order_keys(body: dict) -> list[str]:
    rows = body.get("list", []) if isinstance(body, dict) else body
    return sorted(
        order_key(
            row["symbol"], row["side"], row.get("stop_order_type") or "", row.get("order_link_id") or ""
        )
        for row in rows
    )


def journal_rows() -> list[JournalRow]:
    """Journal rows that name an order, and the daily-limit rows."""
    from django.db.models import Q

    from trading.models import Decision

    rows = Decision.objects.filter(~Q(order_link_id="") | Q(action__startswith="daily_")).order_by(
        "created_at", "id"
    )
    return [
        JournalRow(
            link_id=row.order_link_id,
            strategy=row.strategy,
            symbol=row.symbol,
            action=row.action,
            outcome=row.outcome,
            decision_key=str((row.details or {}).get("event_id") or ""),
            at_ms=_ms(row.created_at),
        )
        for row in rows
    ]


def switch_windows(calls) -> list[Window]:
    """When trading was off, from the database: the halt and resume rows of the journal,
    the panic lock's time (the panic's answer carries the row's `locked_since`) to the
    accepted reset, the daily stop's row onwards, and each PM position's life."""
    from portfolio.models import PortfolioPosition
    from trading.models import Decision

    windows: list[Window] = []
    halted_at = None
    for row in Decision.objects.filter(action__in=("halt", "resume"), strategy="manual").order_by(
        "created_at"
    ):
        if row.action == "halt" and halted_at is None:
            halted_at = _ms(row.created_at)
        elif row.action == "resume" and halted_at is not None:
            windows.append(Window("halt", halted_at, _ms(row.created_at)))
            halted_at = None
    if halted_at is not None:
        windows.append(Window("halt", halted_at, None))
    locked_at = None
    for call in calls:
        if call.name == "panic" and call.body.get("locked_since") and locked_at is None:
            locked_at = _ms(datetime.fromisoformat(call.body["locked_since"].replace("Z", "+00:00")))
        elif call.name == "reset" and call.status == 200 and locked_at is not None:
            windows.append(Window("panic", locked_at, call.at_ms))
            locked_at = None
    if locked_at is not None:
        windows.append(Window("panic", locked_at, None))
    for row in Decision.objects.filter(action__in=("daily_stop", "daily_target")).order_by("created_at")[:1]:
        windows.append(Window("daily", _ms(row.created_at), None))
    for position in PortfolioPosition.objects.all():
        ended = position.closed_at or (None if position.is_active else position.updated_at)
        windows.append(Window("pm", _ms(position.created_at), _ms(ended), position.symbol))
    return windows


def database_text() -> str:
    """Every row of the run's database as JSON text, for the secrets grep."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command("dumpdata", stdout=out, verbosity=0)
    return out.getvalue()


def log_texts(log_dir: Path) -> dict[str, str]:
    return {f"log {path.name}": path.read_text(errors="replace") for path in sorted(log_dir.glob("*.log"))}
