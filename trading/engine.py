"""The liquidation engine: one asyncio process, feed -> decide -> order.

Hot path (``LiquidationEngine.on_event``, called by the feed for each parsed
liquidation): look up the coin, market and instrument in memory, ``decide``, and
for an entry hand the order to the order thread at once. Nothing on that path
touches the database, Redis or a log formatter; the journal row is queued and
written in batches by ``journal_flush_forever``.

Around it, kept current off the hot path:
- coins and risk settings: reloaded when the ``config`` event arrives on Redis
  (the admin, API and importers publish it on commit), and every 30 s anyway;
- the trading switches (panic, halt, daily disable): applied from the
  ``trading_state`` event the moment it arrives;
- the account (positions, open orders, IM %): from the private websocket, and
  reconciled over REST every ``reconcile_interval_s`` and before trading starts;
- prices and VWAP: from Bybit's public ``tickers``/``kline.1`` streams, seeded
  from REST klines on every (re)connect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trading.bybit import BybitGateway, Kline
from trading.bybit.parsing import parse_order, parse_position, parse_wallet
from trading.errors import GatewayError, MalformedAnswer, OrderOutcomeUnknown
from trading.events import LiquidationEvent, MalformedMessage
from trading.rules.decision import AccountSnapshot, CoinRule, Entry, SkipReason, decide
from trading.rules.latency import LatencyWindow
from trading.rules.vwap import Candle, MarketState
from trading.selectors import EngineConfig, RiskLevels, TradingFlags

logger = logging.getLogger(__name__)

WL = "wl"
# Skips of symbols we don't trade arrive about once a second from the all-market
# stream: they are counted, not journaled one by one.
UNJOURNALED_SKIPS = frozenset({SkipReason.NOT_CONFIGURED})
# An entry counts as open from the moment it is decided until a REST reconcile that started
# after the exchange answered for its orderLinkId (the order's answer, or the order on the
# private stream) has shown the account: only such a snapshot can be trusted to hold it (as
# a position, an open order, or already closed). Refused for sure: free at once. A snapshot
# that started earlier may predate the fill and would hide it (one entry per cascade, even
# with a cooldown of 0).
# How long after the answer the reconcile must have started: the venue's position lags its
# order answer by a little.
PENDING_SETTLE_MARGIN_MS = 1_000
# An answer that never settled the outcome (OrderOutcomeUnknown): by then an order that was
# placed shows in any snapshot.
PENDING_UNKNOWN_MS = 30_000
# The dashboard's "recent liquidations": this many of the last seen on configured symbols.
RECENT_LIQUIDATIONS = 50
# Per entry: the liquidation's age when its frame reached us (venue event time to
# receipt, ms), our decision time (receipt to the order handed to its thread, us) and
# the exchange's answer (order handed over to the answer, ms). Journaled with the entry
# and summarised (p50/p99, last hour) in the engine's figures.
LATENCY_FIGURES = ("event_age_ms", "decide_us", "ack_ms")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class AccountView:
    """What the engine knows of the account: filled from REST, kept by the private stream."""

    positions: dict[str, Decimal] = field(default_factory=dict)  # symbol -> size (only open ones)
    open_orders: dict[str, str] = field(default_factory=dict)  # orderId -> symbol (entries, not reduce-only)
    im_pct: Decimal | None = None
    equity: Decimal | None = None

    # Each apply_* parses every row before it changes anything: a batch with one row the
    # parsers refuse (MalformedAnswer) leaves the view as it was, never half updated.

    def apply_positions(self, rows: list[dict[str, Any]]) -> None:
        parsed = []
        for row in rows:
            if _has_symbol(row):
                position = parse_position(row)  # refuses a row that is not an object first
                parsed.append((row["symbol"], position))
        for symbol, position in parsed:
            if position is None:
                self.positions.pop(symbol, None)
            else:
                self.positions[symbol] = position.size

    def apply_orders(self, rows: list[dict[str, Any]]) -> None:
        for order in [parse_order(row) for row in rows]:
            if order.is_open and not order.reduce_only:
                self.open_orders[order.order_id] = order.symbol
            else:
                self.open_orders.pop(order.order_id, None)

    def apply_wallet(self, rows: list[dict[str, Any]]) -> None:
        unified = [
            row for row in rows if not isinstance(row, dict) or row.get("accountType", "UNIFIED") == "UNIFIED"
        ]
        for wallet in [parse_wallet(row) for row in unified]:
            self.im_pct = wallet.im_pct
            self.equity = wallet.total_equity


def _has_symbol(row: Any) -> bool:
    """Rows without a symbol carry nothing for the view (skipped); a row that is not an object
    goes on to the parser, which refuses it."""
    return not isinstance(row, dict) or bool(row.get("symbol"))


@dataclass(slots=True)
class PendingEntry:
    """An entry of ours the account view cannot be trusted to show yet (see PENDING_SETTLE_MARGIN_MS)."""

    order_link_id: str
    sent_ms: int
    answered_ms: int | None = None  # when the exchange answered for the orderLinkId
    seen_open: bool = False  # the position stream showed the symbol held since the entry was sent


@dataclass(frozen=True, slots=True)
class PendingJournal:
    """One decision waiting to be written (plain data; the flusher builds the rows)."""

    at_ms: int
    symbol: str
    action: str
    outcome: str
    reason_code: str
    order_link_id: str
    details: dict[str, Any]


class LiquidationEngine:
    """The engine's state and hot path. Its collaborators are passed in, so tests drive it directly."""

    def __init__(
        self,
        *,
        gateway: BybitGateway,
        loop: asyncio.AbstractEventLoop,
        order_threads: int = 4,
        clock_ms=wall_clock_ms,
    ) -> None:
        self.gateway = gateway
        self.loop = loop
        self.clock_ms = clock_ms
        self.market = MarketState()
        self.account = AccountView()
        self.coins: dict[str, CoinRule] = {}
        self.instruments: dict[str, Any] = {}
        self.risk: RiskLevels | None = None
        self.flags = TradingFlags(panic_locked=False, halted=False, disabled_until_ms=None)
        self.pm_symbols: frozenset[str] = frozenset()
        self.last_entry_ms: dict[str, int] = {}
        self.snapshot: AccountSnapshot | None = None  # None until reconciled: no trading before
        self.skip_counts: Counter[str] = Counter()
        self.journal: list[PendingJournal] = []
        # (seen at ms, event, decision result) of configured symbols, newest last; the
        # journal flusher publishes them. A bounded deque: the append is O(1) and old ones fall off.
        self.recent_liquidations: deque[tuple[int, LiquidationEvent, Any]] = deque(maxlen=RECENT_LIQUIDATIONS)
        self.events_seen = 0
        self.entries_sent = 0
        self.entries_answered = 0  # accepted or refused: the exchange answered (or the call failed)
        self.orders_in_flight = 0
        self.pending_entries: dict[str, PendingEntry] = {}  # symbol -> the entry that counts as open
        # pybit is blocking: orders go out from these threads so the loop keeps reading
        # the feed. Several threads, so one slow order doesn't hold up another symbol.
        self.order_executor = ThreadPoolExecutor(max_workers=order_threads, thread_name_prefix="order")
        self.frame_received_ns = lambda: 0  # set by the runner to the liquidation feed's clock
        self.latency = {name: LatencyWindow() for name in LATENCY_FIGURES}

    # -- the hot path --------------------------------------------------------

    def on_event(self, event: LiquidationEvent) -> None:
        received_ns = self.frame_received_ns() or time.time_ns()
        self.events_seen += 1
        snapshot = self.snapshot
        if snapshot is None:
            self.skip_counts["not_reconciled"] += 1
            return
        symbol = event.symbol
        now_ms = self.clock_ms()
        coin = self.coins.get(symbol)
        result = decide(
            event,
            coin=coin,
            market=self.market.get(symbol),
            account=snapshot,
            instrument=self.instruments.get(symbol),
            now_ms=now_ms,
        )
        if coin is not None:
            self.recent_liquidations.append((now_ms, event, result))
        if type(result) is Entry:
            # Mark the symbol before the order is even sent: the next liquidation,
            # a millisecond later, must not enter it again.
            self.last_entry_ms[symbol] = now_ms
            self.pending_entries[symbol] = PendingEntry(result.order_link_id, now_ms)
            self.snapshot = snapshot.with_entry(symbol, now_ms)
            self.orders_in_flight += 1
            future = self.loop.run_in_executor(self.order_executor, self._place_entry, result)
            decided_ns = time.time_ns()
            future.add_done_callback(
                lambda done: self._entry_done(result, event, received_ns, decided_ns, done)
            )
            return
        reason = result.reason
        self.skip_counts[reason] += 1
        if reason not in UNJOURNALED_SKIPS:
            self.journal.append(
                PendingJournal(
                    now_ms,
                    symbol,
                    _action_for(event),
                    "skipped",
                    reason,
                    "",
                    {
                        "event_id": event.event_id,
                        "liquidation_notional": str(event.notional),
                        "event_age_ms": received_ns // 1_000_000 - event.event_time,
                        "price": None if result.price is None else str(result.price),
                        "vwap": None if result.vwap is None else str(result.vwap),
                    },
                )
            )

    def _place_entry(self, entry: Entry):
        """In an order thread: the order goes on the wire."""
        return self.gateway.place_order(
            symbol=entry.symbol,
            side=entry.side,
            qty=entry.qty,
            order_link_id=entry.order_link_id,
            reference_price=entry.price,
            take_profit=entry.take_profit,
            stop_loss=entry.stop_loss,
        )

    def _entry_done(
        self, entry: Entry, event: LiquidationEvent, received_ns: int, decided_ns: int, done
    ) -> None:
        """Back on the loop once the exchange answered: journal the outcome."""
        self.orders_in_flight -= 1
        answered_ns = time.time_ns()
        latency = {
            "event_age_ms": received_ns // 1_000_000 - event.event_time,
            "decide_us": round((decided_ns - received_ns) / 1000, 1),
            "ack_ms": round((answered_ns - decided_ns) / 1e6, 3),
        }
        details = {
            "event_id": event.event_id,
            "liquidation_notional": str(event.notional),
            "side": entry.side.value,
            "qty": str(entry.qty),
            "price": str(entry.price),
            "vwap": str(entry.vwap),
            "deviation_pct": str(entry.deviation_pct),
            "offset_pct": str(entry.offset_pct),
            "im_pct": str(entry.im_pct),
            "take_profit": None if entry.take_profit is None else str(entry.take_profit),
            "stop_loss": str(entry.stop_loss),
            "leverage": entry.leverage,
            "margin_usdt": str(entry.margin_usdt),
            "frame_ns": received_ns,  # wall clock when the liquidation frame arrived
            **latency,
        }
        error = done.exception()
        pending = self.pending_entries.get(entry.symbol)
        if pending is not None and pending.order_link_id != entry.order_link_id:
            pending = None  # a later entry's mark (after a refusal freed the symbol): not ours
        if error is None:
            ack = done.result()
            self.entries_sent += 1
            details["order_id"] = ack.order_id
            outcome, reason = "taken", "entered"
            if pending is not None and pending.answered_ms is None:
                pending.answered_ms = self.clock_ms()
        else:
            outcome, reason = "failed", _error_reason(error)
            details["error_code"] = getattr(error, "code", None)
            details["error"] = getattr(error, "message", type(error).__name__)
            if isinstance(error, OrderOutcomeUnknown):
                if pending is not None and pending.answered_ms is None:
                    pending.answered_ms = pending.sent_ms + PENDING_UNKNOWN_MS
            elif pending is not None:
                # Refused for sure: the symbol has no order of ours after all (the cooldown stays).
                del self.pending_entries[entry.symbol]
                self._rebuild_snapshot()
            logger.warning(
                "entry_failed symbol=%s side=%s qty=%s reason=%s code=%s",
                entry.symbol,
                entry.side.value,
                entry.qty,
                reason,
                details["error_code"],
            )
        at_ms = self.clock_ms()
        if outcome == "taken":
            # Acknowledged entries only: a timeout's 10 s is not an exchange answer time.
            for name, value in latency.items():
                self.latency[name].add(at_ms, value)
        self.journal.append(
            PendingJournal(
                at_ms,
                entry.symbol,
                _action_for(event),
                outcome,
                reason,
                entry.order_link_id,
                details,
            )
        )
        self.entries_answered += 1

    # -- state kept off the hot path ------------------------------------------

    def apply_config(self, config: EngineConfig) -> None:
        self.coins = config.coins
        self.risk = config.risk
        self.flags = config.flags
        self.pm_symbols = config.pm_symbols
        self.market.configure(
            {symbol: [coin.vwap_window_minutes] for symbol, coin in config.coins.items() if coin.enabled}
        )
        if self.snapshot is not None:
            self._rebuild_snapshot()

    def apply_flags(self, flags: TradingFlags) -> None:
        self.flags = flags
        if self.snapshot is not None:
            self._rebuild_snapshot()

    def apply_private(self, topic: str, rows: list[dict[str, Any]]) -> None:
        """A private-stream update (position / order / wallet rows). A message with a row the
        gateway's parsers refuse changes nothing and is reported to the feed as malformed."""
        try:
            if topic == "position":
                self.account.apply_positions(rows)
                self._pending_closed(rows)
            elif topic == "order":
                self.account.apply_orders(rows)
                self._pending_answered(rows)
            elif topic == "wallet":
                self.account.apply_wallet(rows)
        except MalformedAnswer as error:
            raise MalformedMessage(f"bad_{topic}_row") from error
        if self.snapshot is not None:
            self._rebuild_snapshot()

    def set_instruments(self, instruments) -> None:
        self.instruments = {i.symbol: i for i in instruments}

    def mark_ready(self) -> None:
        """Reconciled: trading may start."""
        self._rebuild_snapshot()

    def apply_reconciled(self, account: AccountView, *, started_ms: int) -> None:
        """A REST snapshot of the account whose reads began at ``started_ms`` (this engine's clock).

        It replaces the account view, and settles the pending entries the exchange had
        answered for (with a margin) before it began: the snapshot shows them. Later ones stay
        pending, whatever the snapshot says: it may predate their fill."""
        self.account = account
        for symbol, pending in list(self.pending_entries.items()):
            if (
                pending.answered_ms is not None
                and pending.answered_ms + PENDING_SETTLE_MARGIN_MS <= started_ms
            ):
                del self.pending_entries[symbol]
        self.mark_ready()

    def _pending_answered(self, rows: list[dict[str, Any]]) -> None:
        """The private stream shows an order of ours: the exchange has answered for its id."""
        if not self.pending_entries:
            return
        now_ms = None
        for row in rows:
            symbol = row.get("symbol")
            pending = self.pending_entries.get(symbol) if symbol else None
            if (
                pending is not None
                and pending.answered_ms is None
                and row.get("orderLinkId") == pending.order_link_id
            ):
                now_ms = now_ms or self.clock_ms()
                pending.answered_ms = now_ms

    def _pending_closed(self, rows: list[dict[str, Any]]) -> None:
        """The position stream (always current, unlike a REST snapshot) showed the symbol held
        since the entry was sent (the engine enters only a flat symbol: that is its fill, whether
        or not the order's answer has come back yet), and now flat: a real close (a TP or SL), so
        the symbol is free again without waiting for the next reconcile. A flat row before the
        position was seen held proves nothing (Bybit pushes the position on the order's
        creation too)."""
        if not self.pending_entries:
            return
        for row in rows:
            symbol = row.get("symbol")
            pending = self.pending_entries.get(symbol) if symbol else None
            if pending is None:
                continue
            if symbol in self.account.positions:
                pending.seen_open = True
            elif pending.seen_open:
                del self.pending_entries[symbol]

    def _rebuild_snapshot(self) -> None:
        risk, account, flags = self.risk, self.account, self.flags
        if risk is None or account.im_pct is None:
            return
        self.snapshot = AccountSnapshot(
            equity_usdt=risk.equity_usdt,
            im_pct=account.im_pct,
            im_warn_pct=risk.im_warn_pct,
            im_block_pct=risk.im_block_pct,
            max_open_positions=risk.max_open_positions,
            panic_locked=flags.panic_locked,
            halted=flags.halted,
            disabled_until_ms=flags.disabled_until_ms,
            pm_symbols=self.pm_symbols,
            open_position_symbols=frozenset(account.positions),
            open_order_symbols=frozenset(account.open_orders.values()) | self._pending_symbols(account),
            last_entry_ms=dict(self.last_entry_ms),
        )

    def _pending_symbols(self, account: AccountView) -> frozenset[str]:
        """Entries not yet settled by a trustworthy snapshot: they still count as open."""
        return frozenset(self.pending_entries)

    def seed_candles(self, symbol: str, klines: list[Kline]) -> None:
        """VWAP history from REST klines (oldest first; the newest may still be open).

        Replaces what the windows held: the REST history is complete, the stream's may
        have gaps (a reconnect) or be too short (a longer window)."""
        now_ms = self.clock_ms()
        market = self.market.get(symbol)
        if market is not None and klines:
            market.clear_candles()
        last = len(klines) - 1
        candles = [
            Candle(
                start_ms=int(k.start.timestamp() * 1000),
                open=k.open,
                high=k.high,
                low=k.low,
                close=k.close,
                volume=k.volume,
                turnover=k.turnover,
                confirmed=index != last,
            )
            for index, k in enumerate(klines)
        ]
        self.market.apply_candles(symbol, candles, now_ms)
        if klines:
            self.market.apply_price(symbol, klines[-1].close, now_ms)

    def take_journal(self) -> list[PendingJournal]:
        pending, self.journal = self.journal, []
        return pending

    def stats(self) -> dict[str, Any]:
        now_ms = self.clock_ms()
        return {
            "ready": self.snapshot is not None,
            "coins": len(self.coins),
            "entries_sent": self.entries_sent,
            "orders_in_flight": self.orders_in_flight,
            "skips": dict(self.skip_counts),
            "positions": len(self.account.positions),
            "im_pct": None if self.account.im_pct is None else str(self.account.im_pct),
            # p50/p99 of each figure over the last hour, and how many entries they cover.
            "latency": {name: window.summary(now_ms) for name, window in self.latency.items()},
        }


def _action_for(event: LiquidationEvent) -> str:
    return "open_long" if event.liquidated_side == "long" else "open_short"


def _error_reason(error: BaseException) -> str:
    """A journal reason code for a failed entry."""
    if isinstance(error, OrderOutcomeUnknown):
        return "outcome_unknown"
    if isinstance(error, GatewayError):
        names = {
            110007: "insufficient_balance",
            110004: "insufficient_balance",
            110012: "insufficient_balance",
            10006: "rate_limited",
            110094: "below_min_notional",
            110017: "reduce_only_rejected",
            10001: "bad_request",
            110072: "duplicate_order_link_id",
        }
        return names.get(getattr(error, "code", None), f"exchange_error_{getattr(error, 'code', 'unknown')}")
    return "order_error"


def journal_rows(pending: list[PendingJournal]):
    """Decision rows for the journal (the models are imported here, off the hot path)."""
    from trading.models import Decision

    return [
        Decision(
            created_at=datetime.fromtimestamp(p.at_ms / 1000, tz=UTC),
            strategy=WL,
            symbol=p.symbol,
            action=p.action,
            outcome=p.outcome,
            reason_code=p.reason_code,
            details=p.details,
            order_link_id=p.order_link_id,
        )
        for p in pending
    ]
