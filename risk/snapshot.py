"""The account snapshot the dashboard shows, published to Redis by the worker.

The web process never talks to the exchange: a page view must not wait on Bybit or
spend its rate limit. The Celery worker already reads the account for the risk loop,
so it also publishes what the dashboard needs (``risk.account_snapshot`` on the beat,
every 2 s): equity and the wallet's figures, IM %, positions with the strategy that
owns each, and open orders. It is also the exchange's reachability probe
(``core.exchange_status``): each read records a good answer or the failure. Decimals
are strings (exact; JSON has no decimal type).

Redis keys:
- ``keys.ACCOUNT_SNAPSHOT``: the last good snapshot (JSON, no TTL: the page shows its
  age, so a dead worker shows as an old snapshot rather than as nothing);
- ``keys.ACCOUNT_SNAPSHOT_ERROR``: why the last read failed (expires; a good read deletes it);
- ``keys.EQUITY_SAMPLES``: intraday equity for the chart, ``"<ms> <equity>"`` entries, at
  most one per ``EQUITY_SAMPLE_INTERVAL_S``, capped at a day's worth.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core import keys
from core.alerts import alert_send
from core.redis_client import redis_client
from trading.bybit import BybitGateway, Order, Position, Wallet
from trading.errors import GatewayError
from trading.models import Coin
from trading.selectors import pm_symbols
from trading.worker_gateway import exchange_failure_note, exchange_ok_note

logger = logging.getLogger(__name__)


# The chart's resolution: a sample every 30 s is 2,880 a day, few enough to send whole.
EQUITY_SAMPLE_INTERVAL_S = 30
EQUITY_SAMPLES_MAX = 24 * 3600 // EQUITY_SAMPLE_INTERVAL_S
# An error older than this says nothing about the current state any more.
ERROR_TTL_S = 120

PM, WL, MANUAL = "PM", "WL", "manual"
# orderLinkId prefixes (trading.rules.order_link_id: "<strategy>-<leg>-...") and who they are.
ORDER_PREFIX_OWNERS = {"wl": WL, "pm": PM, "risk": "risk", "panic": "panic"}


def position_owner(symbol: str, *, pm: frozenset[str], wl: frozenset[str]) -> str:
    """Who manages a position: the portfolio if it holds the symbol (WL skips those), the
    liquidation engine if the symbol is a configured coin, else nobody of ours."""
    if symbol in pm:
        return PM
    if symbol in wl:
        return WL
    return MANUAL


def order_owner(order: Order, *, pm: frozenset[str], wl: frozenset[str]) -> str:
    """Who placed an order: its orderLinkId says so for ours; Bybit's own TP/SL orders
    (no orderLinkId) belong to the position's owner."""
    prefix = order.order_link_id.split("-", 1)[0]
    if prefix in ORDER_PREFIX_OWNERS and "-" in order.order_link_id:
        return ORDER_PREFIX_OWNERS[prefix]
    return position_owner(order.symbol, pm=pm, wl=wl)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def position_row(position: Position, *, owner: str) -> dict:
    return {
        "symbol": position.symbol,
        "owner": owner,
        "side": "long" if position.is_long else "short",
        "size": _text(position.size),
        "entry_price": _text(position.avg_price),
        "mark_price": _text(position.mark_price),
        "position_value": _text(position.position_value),
        "leverage": _text(position.leverage),
        "unrealised_pnl": _text(position.unrealised_pnl),
        "take_profit": _text(position.take_profit),
        "stop_loss": _text(position.stop_loss),
        "liq_price": _text(position.liq_price),
    }


def order_row(order: Order, *, owner: str) -> dict:
    return {
        "symbol": order.symbol,
        "owner": owner,
        "side": order.side.value,
        "order_type": order.order_type,
        # Bybit says "UNKNOWN" (or "") for an ordinary order; only TP/SL/stop kinds mean something.
        "stop_order_type": "" if order.stop_order_type in ("", "UNKNOWN") else order.stop_order_type,
        "status": order.status,
        "price": _text(order.price),
        "trigger_price": _text(order.trigger_price),
        "qty": _text(order.qty),
        "leaves_qty": _text(order.leaves_qty),
        "reduce_only": order.reduce_only,
        "order_link_id": order.order_link_id,
        "created_ms": _ms(order.created_at),
    }


def wallet_fields(wallet: Wallet) -> dict:
    return {
        "equity": _text(wallet.total_equity),
        "wallet_balance": _text(wallet.total_wallet_balance),
        "available_balance": _text(wallet.total_available_balance),
        "initial_margin": _text(wallet.total_initial_margin),
        "maintenance_margin": _text(wallet.total_maintenance_margin),
        "unrealised_pnl": _text(wallet.total_perp_upl),
        # Infinity (margin in use, no equity) stays a string JSON can carry.
        "im_pct": _text(wallet.im_pct),
    }


@dataclass
class SnapshotResult:
    published: bool
    positions: int = 0
    open_orders: int = 0
    equity_sampled: bool = False
    error: str = ""

    def summary(self) -> dict:
        return {
            "published": self.published,
            "positions": self.positions,
            "open_orders": self.open_orders,
            "equity_sampled": self.equity_sampled,
            "error": self.error,
        }


def account_snapshot_publish_step(*, gateway: BybitGateway, now: datetime) -> SnapshotResult:
    """Read the account (three REST calls), publish it to Redis, and sample equity for the chart.

    A failed read keeps the last good snapshot (the page shows its age) and records
    why in ``keys.ACCOUNT_SNAPSHOT_ERROR``: the error's class and Bybit's code and
    message, never ``str()`` of a pybit error (it holds the request).
    """
    try:
        wallet = gateway.wallet()
        positions = gateway.positions()
        orders = [order for order in gateway.open_orders() if order.is_open]
    except GatewayError as error:
        text = f"{type(error).__name__} (code {error.code}): {error.message}"[:300]
        logger.warning("account_snapshot_failed error=%s code=%s", type(error).__name__, error.code)
        exchange_failure_note(error)  # a refused key: the status in plain words, alerted once
        redis_client().set(
            keys.ACCOUNT_SNAPSHOT_ERROR,
            json.dumps({"at_ms": _ms(now), "error": text}),
            ex=ERROR_TTL_S,
        )
        return SnapshotResult(published=False, error=text)
    exchange_ok_note()

    pm = pm_symbols()
    wl = frozenset(Coin.objects.values_list("symbol", flat=True))
    snapshot = {
        "at_ms": _ms(now),
        **wallet_fields(wallet),
        "positions": [
            position_row(p, owner=position_owner(p.symbol, pm=pm, wl=wl))
            for p in sorted(positions, key=lambda p: p.symbol)
        ],
        "open_orders": [
            order_row(o, owner=order_owner(o, pm=pm, wl=wl))
            for o in sorted(orders, key=lambda o: (o.symbol, o.created_at or now))
        ],
    }
    client = redis_client()
    sampled = bool(client.set(keys.EQUITY_SAMPLE_CLAIM, "1", nx=True, ex=EQUITY_SAMPLE_INTERVAL_S))
    with client.pipeline(transaction=True) as pipe:
        # GETSET: each previous snapshot is handed to exactly one publisher (wl_exits_alert).
        pipe.getset(keys.ACCOUNT_SNAPSHOT, json.dumps(snapshot))
        pipe.delete(keys.ACCOUNT_SNAPSHOT_ERROR)
        if sampled:
            pipe.rpush(keys.EQUITY_SAMPLES, f"{_ms(now)} {wallet.total_equity}")
            pipe.ltrim(keys.EQUITY_SAMPLES, -EQUITY_SAMPLES_MAX, -1)
        previous = pipe.execute()[0]
    wl_exits_alert(previous=previous, positions=snapshot["positions"])
    return SnapshotResult(
        published=True, positions=len(positions), open_orders=len(orders), equity_sampled=sampled
    )


def wl_exits_alert(*, previous: str | None, positions: list[dict]) -> None:
    """Alert (`exit`) each WL position of the previous snapshot that is gone from this one.

    WL exits happen on the exchange (its TP/SL), or by a panic, the daily flatten or a
    person; this is where the worker first sees them, 2 s at most after the fact."""
    try:
        before = json.loads(previous)["positions"] if previous else []
        now_open = {(row["symbol"], row["side"]) for row in positions}
        for row in before:
            if row.get("owner") != WL or (row["symbol"], row["side"]) in now_open:
                continue
            alert_send(
                f"WL exit {row['symbol']} {row['side']} {row['size']}: the position is closed "
                f"(entry {row['entry_price']}; at the read before: mark {row['mark_price']}, "
                f"unrealised PnL {row['unrealised_pnl']} USDT).",
                kind="exit",
            )
    except Exception as error:  # a snapshot of an older shape must not break the publishing
        logger.warning("wl_exits_alert_failed error=%s", type(error).__name__)
