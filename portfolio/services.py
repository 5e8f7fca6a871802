"""Portfolio momentum (PM): the actions. Two steps, each one blocking pass:

- ``portfolio_scan_step`` (due every ``scan_interval_minutes``): ranks the enabled
  allowlist by momentum and enters the best symbols, long, at 1x, within the budget.
- ``portfolio_trail_step`` (every minute): settles orders left pending, raises the
  high-water marks from the tickers, exits on the trailing stop (reduce-only, PM's
  exact share) and adds to winners.

The pure decisions live in ``portfolio.rules``; the Celery tasks in ``portfolio.tasks``
only call these steps.

Safety, in the order an order goes out:
1. The decision gets a deterministic ``orderLinkId`` (entry: the symbol and the scan's
   minute; add: the position, the add's number and the minute; exit: the position and
   the attempt). A ``PortfolioOrder`` row with that unique id is written *before* the
   order is sent, so a step that runs twice finds the row and sends nothing, and a
   worker that died after sending leaves a ``pending`` row that a later pass settles
   by looking the order up on the exchange.
2. The symbol joins the Redis set of PM-managed symbols (``keys.PM_SYMBOLS``) before an
   entry goes out, and a config event tells the liquidation engine at once, so WL never
   enters what PM is entering. It leaves the set only once the exit is verified on the
   exchange (or the entry definitely failed). Each pass also rewrites the set from the
   database, so it always equals the symbols PM holds.
3. The two steps never run at once: they share a Redis lock over the PM book, so two
   workers can't spend the same budget or send the same add.
4. No exchange call is made inside a database transaction.

PM only touches positions it opened: it never enters a symbol that already has a
position, and an exit closes at most PM's own share (``PortfolioPosition.qty``).
New entries and adds need PM enabled and trading allowed (``TradingState.may_trade``);
exits always run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from redis.exceptions import LockError

from core import keys
from core.models import TradingState
from core.redis_client import redis_client
from portfolio import rules
from portfolio.models import (
    AllowlistEntry,
    PortfolioOrder,
    PortfolioPosition,
    PortfolioSettings,
    PortfolioState,
)
from trading.bybit import BybitGateway, Position, Ticker
from trading.errors import (
    GatewayError,
    OrderOutcomeUnknown,
    ReduceOnlyRejected,
    RetryableError,
    UnknownInstrument,
)
from trading.models import Decision
from trading.rules import Side
from trading.rules.order_link_id import order_link_id
from trading.services import decision_record, events_publish

logger = logging.getLogger(__name__)

STRATEGY = Decision.Strategy.PORTFOLIO  # also the orderLinkId prefix: pm-entry-XRP-<hash>
TAKEN = Decision.Outcome.TAKEN
SKIPPED = Decision.Outcome.SKIPPED
FAILED = Decision.Outcome.FAILED

OPENING = PortfolioPosition.Status.OPENING
OPEN = PortfolioPosition.Status.OPEN
CLOSING = PortfolioPosition.Status.CLOSING
CLOSED = PortfolioPosition.Status.CLOSED
POSITION_FAILED = PortfolioPosition.Status.FAILED
PENDING = PortfolioOrder.Status.PENDING
FILLED = PortfolioOrder.Status.FILLED
ORDER_FAILED = PortfolioOrder.Status.FAILED
ENTRY = PortfolioOrder.Leg.ENTRY
ADD = PortfolioOrder.Leg.ADD
EXIT = PortfolioOrder.Leg.EXIT

LEVERAGE = Decimal("1")  # PM never borrows: margin = notional

# A pass takes seconds; the lock outlives any pass, and frees itself if a worker dies.
BOOK_LOCK_TTL_S = 300
# How long a step waits for the other one to finish before giving up this beat.
BOOK_LOCK_WAIT_S = 10.0
# A failure or skip that repeats every minute (an add the venue keeps refusing) is
# journaled at most this often; every occurrence is still logged.
FAILURE_JOURNAL_INTERVAL_S = 300
# An order the venue has no record of this long after it was written down never got there.
ORDER_LOOKUP_GRACE = timedelta(minutes=2)


def _text(value: Decimal | None) -> str | None:
    """Decimals go into the journal's JSON as exact strings (JSON has no Decimal), without the
    trailing zeros of a computed value or a database column: "2.869", never "2.869000000000"."""
    if value is None:
        return None
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct_text(value: Decimal | None) -> str | None:
    """A momentum % for the journal, to 4 decimals ("10.0000"); the decision used the exact value."""
    return None if value is None else str(value.quantize(Decimal("0.0001")))


def _journal(
    *,
    action: str,
    outcome: str,
    reason_code: str,
    now: datetime,
    symbol: str = "",
    details: dict | None = None,
    order_link_id: str = "",
) -> None:
    decision_record(
        strategy=STRATEGY,
        action=action,
        outcome=outcome,
        symbol=symbol,
        reason_code=reason_code,
        details=details or {},
        order_link_id=order_link_id,
        at=now,
    )
    logger.info(
        "pm_decision action=%s outcome=%s symbol=%s reason=%s order_link_id=%s",
        action,
        outcome,
        symbol,
        reason_code,
        order_link_id,
    )


def _journal_due(what: str) -> bool:
    """True at most once per FAILURE_JOURNAL_INTERVAL_S for one repeating failure or skip."""
    key = keys.PM_FAILURE_JOURNALED.format(what=what)
    return bool(redis_client().set(key, "1", nx=True, ex=FAILURE_JOURNAL_INTERVAL_S))


def _error_details(error: GatewayError) -> dict:
    # error.message is Bybit's retMsg or our own words, never the request (see trading.errors).
    return {"error": type(error).__name__, "code": error.code, "message": error.message}


# ----------------------------------------------------------------------------------
# The PM-managed set in Redis, and the book lock
# ----------------------------------------------------------------------------------


def _pm_set_add(symbol: str) -> None:
    """Mark ``symbol`` PM-managed; the engine reloads its config at once."""
    if redis_client().sadd(keys.PM_SYMBOLS, symbol):
        events_publish("config")


def _pm_set_remove(symbol: str) -> None:
    """Unmark ``symbol`` unless PM still has a live position on it."""
    if PortfolioPosition.objects.active().filter(symbol=symbol).exists():
        return
    if redis_client().srem(keys.PM_SYMBOLS, symbol):
        events_publish("config")


def pm_symbols_sync() -> bool:
    """Make the Redis set equal the symbols PM holds (after a Redis restart, a crash midway...).

    Returns whether it changed anything.
    """
    wanted = set(PortfolioPosition.objects.active().values_list("symbol", flat=True))
    client = redis_client()
    current = set(client.smembers(keys.PM_SYMBOLS))
    missing, extra = wanted - current, current - wanted
    if missing:
        client.sadd(keys.PM_SYMBOLS, *missing)
    if extra:
        client.srem(keys.PM_SYMBOLS, *extra)
    if not (missing or extra):
        return False
    logger.warning(
        "pm_symbols_resynced added=%s removed=%s", ",".join(sorted(missing)), ",".join(sorted(extra))
    )
    events_publish("config")
    return True


@contextmanager
def _book_lock() -> Iterator[bool]:
    """Hold the PM book (one step at a time, across workers); yields whether it was acquired."""
    lock = redis_client().lock(
        keys.PM_BOOK_LOCK, timeout=BOOK_LOCK_TTL_S, blocking_timeout=BOOK_LOCK_WAIT_S, thread_local=False
    )
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except LockError:  # it outlived its TTL: someone else may hold it now; leave theirs alone
                logger.warning("pm_book_lock_expired")


# ----------------------------------------------------------------------------------
# Orders: write down, send, settle
# ----------------------------------------------------------------------------------


def _book_committed() -> Decimal:
    """USDT the PM book holds or is buying: filled legs at their fill prices, pending ones at their
    decision prices."""
    cost = PortfolioPosition.objects.active().aggregate(total=Sum("cost_usdt"))["total"] or Decimal("0")
    pending = PortfolioOrder.objects.filter(status=PENDING, leg__in=[ENTRY, ADD]).values_list(
        "qty", "reference_price"
    )
    return cost + sum((qty * price for qty, price in pending), Decimal("0"))


def _leg_filled(*, order: PortfolioOrder, qty: Decimal, price: Decimal, now: datetime) -> bool:
    """Record a fill on the order and its position; False if another pass already settled it."""
    with transaction.atomic():
        claimed = PortfolioOrder.objects.filter(pk=order.pk, status=PENDING).update(
            status=FILLED, filled_qty=qty, fill_price=price, settled_at=now
        )
        if claimed != 1:
            return False
        position = PortfolioPosition.objects.select_for_update().get(pk=order.position_id)
        if order.leg == ENTRY:
            position.status = OPEN
            position.qty = qty
            position.cost_usdt = qty * price
            position.entry_price = price
            position.last_add_price = price
            position.high_water_price = rules.high_water(previous=position.high_water_price, price=price)
            position.opened_at = now
        elif order.leg == ADD:
            position.qty += qty
            position.cost_usdt += qty * price
            position.last_add_price = price
        else:
            remaining = max(position.qty - qty, Decimal("0"))
            if position.qty > 0:
                position.cost_usdt = position.cost_usdt * remaining / position.qty
            position.qty = remaining
            position.exit_price = price
        position.save()
    order.refresh_from_db()
    order.position = position
    return True


def _leg_failed(*, order: PortfolioOrder, reason: str, now: datetime) -> bool:
    """Nothing traded: undo what the leg reserved. False if another pass already settled it."""
    with transaction.atomic():
        claimed = PortfolioOrder.objects.filter(pk=order.pk, status=PENDING).update(
            status=ORDER_FAILED, error=reason[:200], settled_at=now
        )
        if claimed != 1:
            return False
        positions = PortfolioPosition.objects.filter(pk=order.position_id)
        if order.leg == ENTRY:
            positions.filter(status=OPENING).update(status=POSITION_FAILED, closed_at=now)
        elif order.leg == ADD:
            # The add did not happen: it does not count against pyramid_max_adds.
            positions.filter(adds_made__gt=0).update(adds_made=F("adds_made") - 1)
        # A failed exit leaves the position closing: the next pass sends a new attempt.
    if order.leg == ENTRY:
        _pm_set_remove(order.position.symbol)
    return True


def _order_settle(*, gateway: BybitGateway, order: PortfolioOrder, now: datetime) -> str:
    """Look a pending order up on the exchange and record what it says; returns its status after."""
    symbol = order.position.symbol
    try:
        venue = gateway.get_order(order_link_id=order.order_link_id, symbol=symbol)
    except GatewayError as error:
        logger.warning(
            "pm_order_lookup_failed symbol=%s order_link_id=%s code=%s error=%s",
            symbol,
            order.order_link_id,
            error.code,
            type(error).__name__,
        )
        return PENDING
    if venue is None:
        if now - order.created_at >= ORDER_LOOKUP_GRACE:
            _leg_failed(order=order, reason="not_on_exchange", now=now)
            return ORDER_FAILED
        return PENDING  # Bybit creates orders asynchronously: look again next pass
    if venue.is_open:
        return PENDING
    if venue.cum_exec_qty > 0:
        price = venue.avg_price or venue.cum_exec_value / venue.cum_exec_qty
        _leg_filled(order=order, qty=venue.cum_exec_qty, price=price, now=now)
        return FILLED
    _leg_failed(order=order, reason=venue.reject_reason or venue.status or "not_filled", now=now)
    return ORDER_FAILED


def _long_of(positions: list[Position], symbol: str) -> Position | None:
    for position in positions:
        if position.symbol == symbol and position.is_long:
            return position
    return None


def _position_close(
    *, position: PortfolioPosition, reason: str, exit_price: Decimal | None, now: datetime
) -> bool:
    """Mark a position closed and release its symbol; False if it was not live any more."""
    changes = {"status": CLOSED, "closed_at": now, "exit_reason": reason[:40]}
    if exit_price is not None:
        changes["exit_price"] = exit_price
    closed = PortfolioPosition.objects.filter(pk=position.pk, status__in=[OPEN, CLOSING]).update(**changes)
    if closed:
        _pm_set_remove(position.symbol)
    return bool(closed)


def _exit_verified(*, gateway: BybitGateway, position: PortfolioPosition) -> bool:
    """PM's share is gone: its exit fills covered it, or the exchange shows no long at all."""
    position.refresh_from_db()
    if position.qty <= 0:
        return True
    try:
        return _long_of(gateway.positions(symbol=position.symbol), position.symbol) is None
    except GatewayError:
        return False  # unverified: the next pass looks again


def _book_settle(*, gateway: BybitGateway, now: datetime) -> list[str]:
    """Settle every order an earlier pass left pending; journal what became known. Returns their ids."""
    settled = []
    for order in PortfolioOrder.objects.filter(status=PENDING).select_related("position").order_by("id"):
        status = _order_settle(gateway=gateway, order=order, now=now)
        if status == PENDING:
            continue
        settled.append(order.order_link_id)
        position = order.position
        position.refresh_from_db()
        action = {ENTRY: "enter", ADD: "add", EXIT: "exit"}[order.leg]
        details = {"leg": order.leg, "qty": _text(order.qty), "note": "settled after the fact"}
        if status == FILLED:
            order.refresh_from_db()
            details.update({"filled_qty": _text(order.filled_qty), "fill_price": _text(order.fill_price)})
            if order.leg == EXIT and _exit_verified(gateway=gateway, position=position):
                _position_close(
                    position=position, reason=position.exit_reason, exit_price=order.fill_price, now=now
                )
        else:
            details["error"] = order.error
        _journal(
            action=action,
            outcome=TAKEN if status == FILLED else FAILED,
            reason_code="settled_filled" if status == FILLED else "settled_failed",
            symbol=position.symbol,
            details=details,
            order_link_id=order.order_link_id,
            now=now,
        )
    return settled


# ----------------------------------------------------------------------------------
# The scan
# ----------------------------------------------------------------------------------


@dataclass
class ScanResult:
    """What one call of ``portfolio_scan_step`` did.

    ``status``: ``scanned``, ``disabled`` (PM off), ``not_due``, ``busy`` (the trail
    step held the book), ``trading_not_allowed`` (a scan was due but trading is
    locked, halted or disabled: journaled, nothing entered).
    """

    status: str
    scan_key: str = ""
    momenta: dict[str, str | None] = field(default_factory=dict)
    entered: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)

    @property
    def found_work(self) -> bool:
        return bool(self.entered or self.failed or self.settled)

    def summary(self) -> dict:
        return {
            "status": self.status,
            "scan_key": self.scan_key,
            "momenta": dict(self.momenta),
            "entered": list(self.entered),
            "skipped": dict(self.skipped),
            "failed": list(self.failed),
            "settled": list(self.settled),
        }


def portfolio_scan_step(*, gateway: BybitGateway, now: datetime) -> ScanResult:
    """Scan the allowlist and enter the top-momentum symbols, if a scan is due.

    Does nothing while PM is disabled. A scan is due ``scan_interval_minutes`` after the
    last one started; the worker that wins a conditional UPDATE of
    ``PortfolioState.last_scan_at`` runs it. While trading is not allowed a due scan is
    journaled as skipped and nothing is entered. The allowlist is read fresh each scan,
    so admin edits apply at the next scan.

    A ``RetryableError`` while reading the market (before any order) gives the claim
    back and is raised, so the task's retry scans again.
    """
    settings = PortfolioSettings.load()
    if not settings.enabled:
        return ScanResult(status="disabled")
    interval = settings.scan_interval_minutes
    if not rules.scan_due(
        last_scan_at=PortfolioState.load().last_scan_at, now=now, interval_minutes=interval
    ):
        return ScanResult(status="not_due")
    with _book_lock() as held:
        if not held:
            logger.info("pm_scan_busy")
            return ScanResult(status="busy")
        state = PortfolioState.load()
        if not rules.scan_due(last_scan_at=state.last_scan_at, now=now, interval_minutes=interval):
            return ScanResult(status="not_due")
        key = rules.time_bucket(now)
        claimed = PortfolioState.objects.filter(
            pk=state.pk, last_scan_at=state.last_scan_at, last_scan_key=state.last_scan_key
        ).update(last_scan_at=now, last_scan_key=key)
        if claimed != 1:
            return ScanResult(status="not_due")  # another worker claimed it between our read and write
        result = ScanResult(status="scanned", scan_key=key)
        try:
            result.settled = _book_settle(gateway=gateway, now=now)
            pm_symbols_sync()
            trading = TradingState.load()
            if not trading.may_trade(now):
                result.status = "trading_not_allowed"
                _journal(
                    action="scan",
                    outcome=SKIPPED,
                    reason_code="trading_not_allowed",
                    details=_trading_details(trading, now),
                    now=now,
                )
                return result
            _scan_run(gateway=gateway, settings=settings, key=key, now=now, result=result)
        except RetryableError:
            # Nothing was sent yet (orders are sent after every read): give the scan back.
            PortfolioState.objects.filter(pk=state.pk, last_scan_key=key).update(
                last_scan_at=state.last_scan_at, last_scan_key=state.last_scan_key
            )
            raise
    return result


def _trading_details(trading: TradingState, now: datetime) -> dict:
    return {
        "panic_locked": trading.panic_locked,
        "halted": trading.halted,
        "disabled_until": trading.disabled_until.isoformat() if trading.is_disabled(now) else None,
    }


def _scan_run(
    *, gateway: BybitGateway, settings: PortfolioSettings, key: str, now: datetime, result: ScanResult
) -> None:
    allowlist = list(AllowlistEntry.objects.filter(enabled=True).values_list("symbol", flat=True))
    held = set(PortfolioPosition.objects.active().values_list("symbol", flat=True))
    lookback = settings.momentum_lookback_hours

    # Read everything first: a read failure then costs no half-done scan.
    # A symbol with a position PM did not open is not PM's to trade: it takes no slot.
    foreign = {position.symbol for position in gateway.positions()} - held
    momenta: dict[str, Decimal | None] = {}
    instruments = {}
    for symbol in allowlist:
        if symbol in held:
            continue
        if symbol in foreign:
            result.skipped[symbol] = "position_not_ours"
            continue
        try:
            instrument = gateway.instrument(symbol)
        except UnknownInstrument:
            result.skipped[symbol] = "unknown_instrument"
            continue
        if not instrument.is_trading:
            result.skipped[symbol] = "not_trading"
            continue
        try:
            candles = gateway.klines(symbol=symbol, interval=rules.KLINE_INTERVAL, limit=lookback + 1)
        except RetryableError:
            raise
        except GatewayError as error:  # this symbol's data is refused; the others still count
            logger.warning(
                "pm_klines_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__
            )
            result.skipped[symbol] = "market_data_error"
            continue
        momenta[symbol] = rules.momentum_pct(closes=[candle.close for candle in candles], lookback=lookback)
        instruments[symbol] = instrument
    tickers: dict[str, Ticker] = {ticker.symbol: ticker for ticker in gateway.tickers()}

    ranking = rules.rank(
        momenta=momenta,
        min_momentum_pct=settings.min_momentum_pct,
        held=held,
        max_positions=settings.max_positions,
    )
    result.momenta = {symbol: _pct_text(value) for symbol, value in momenta.items()}
    result.skipped.update(ranking.skipped)
    leg_usdt = rules.leg_usdt(
        budget_usdt=settings.budget_usdt,
        max_positions=settings.max_positions,
        pyramid_max_adds=settings.pyramid_max_adds,
    )
    committed = _book_committed()
    free_slots = settings.max_positions - len(held)
    # Down the ranking until the slots are filled: a symbol that can't be entered (too
    # small for its leg, refused) gives its slot to the next one; the rest keep no_free_slot.
    for rank, (symbol, momentum) in enumerate(ranking.ranked, start=1):
        if free_slots <= 0:
            break
        result.skipped.pop(symbol, None)
        base = {
            "momentum_pct": _pct_text(momentum),
            "rank": rank,
            "lookback_hours": lookback,
            "scan_key": key,
            "budget_usdt": _text(settings.budget_usdt),
            "leg_usdt": _text(leg_usdt),
            "committed_usdt": _text(committed),
        }
        ticker = tickers.get(symbol)
        if ticker is None or ticker.last_price <= 0:
            result.skipped[symbol] = "no_price"
            continue
        price = ticker.last_price
        size = rules.leg_size(
            budget_usdt=settings.budget_usdt,
            committed_usdt=committed,
            leg_usdt=leg_usdt,
            price=price,
            limits=instruments[symbol],
        )
        if size.reason is not None:
            result.skipped[symbol] = size.reason
            continue
        outcome = _entry_open(
            gateway=gateway,
            symbol=symbol,
            qty=size.qty,
            price=price,
            momentum=momentum,
            key=key,
            details={
                **base,
                "price": _text(price),
                "qty": _text(size.qty),
                "notional_usdt": _text(size.notional),
            },
            now=now,
        )
        if outcome == TAKEN:
            result.entered.append(symbol)
        elif outcome == FAILED:
            result.failed.append(symbol)
        else:
            result.skipped[symbol] = outcome
        committed = _book_committed()
        free_slots = settings.max_positions - PortfolioPosition.objects.active().count()

    for symbol, reason in sorted(result.skipped.items()):
        details = {"momentum_pct": result.momenta.get(symbol), "scan_key": key}
        if reason == rules.BELOW_MIN_MOMENTUM:
            details["min_momentum_pct"] = _text(settings.min_momentum_pct)
        _journal(action="enter", outcome=SKIPPED, reason_code=reason, symbol=symbol, details=details, now=now)
    _journal(
        action="scan",
        outcome=TAKEN,
        reason_code="scanned",
        details={
            "scan_key": key,
            "allowlist": allowlist,
            "held": sorted(held),
            "momenta": result.momenta,
            "ranked": [symbol for symbol, _ in ranking.ranked],
            "entered": result.entered,
            "failed": result.failed,
            "min_momentum_pct": _text(settings.min_momentum_pct),
            "max_positions": settings.max_positions,
            "budget_usdt": _text(settings.budget_usdt),
            "leg_usdt": _text(leg_usdt),
        },
        now=now,
    )


def _entry_open(
    *,
    gateway: BybitGateway,
    symbol: str,
    qty: Decimal,
    price: Decimal,
    momentum: Decimal,
    key: str,
    details: dict,
    now: datetime,
) -> str:
    """Open one PM long. Returns ``taken``, ``failed``, or a skip reason."""
    link_id = order_link_id(strategy=STRATEGY, symbol=symbol, decision_key=f"scan-{key}", leg="entry")
    try:
        with transaction.atomic():
            position = PortfolioPosition.objects.create(
                symbol=symbol, status=OPENING, momentum_pct=momentum, created_at=now
            )
            order = PortfolioOrder.objects.create(
                position=position,
                leg=ENTRY,
                order_link_id=link_id,
                qty=qty,
                reference_price=price,
                created_at=now,
            )
    except IntegrityError:
        # A live PM position on the symbol, or this very entry already written down: never twice.
        logger.info("pm_entry_exists symbol=%s order_link_id=%s", symbol, link_id)
        return "already_entered"
    # PM-managed from here on, before the order exists: WL must not enter it meanwhile.
    _pm_set_add(symbol)
    details = {**details, "leverage": str(LEVERAGE)}
    try:
        # Read again now that WL stays away: a position opened since the scan's read is not ours.
        if gateway.positions(symbol=symbol):
            _leg_failed(order=order, reason="position_not_ours", now=now)
            return "position_not_ours"
        gateway.set_leverage(symbol=symbol, leverage=LEVERAGE)
        gateway.place_order(
            symbol=symbol, side=Side.BUY, qty=qty, order_link_id=link_id, reference_price=price
        )
    except OrderOutcomeUnknown as error:
        # It may be on the exchange: the row stays pending and a later pass settles it.
        _journal(
            action="enter",
            outcome=FAILED,
            reason_code="outcome_unknown",
            symbol=symbol,
            details={**details, **_error_details(error)},
            order_link_id=link_id,
            now=now,
        )
        return FAILED
    except GatewayError as error:
        # Refused (or leverage/position reads failed): nothing was bought.
        _leg_failed(order=order, reason=type(error).__name__, now=now)
        _journal(
            action="enter",
            outcome=FAILED,
            reason_code=type(error).__name__,
            symbol=symbol,
            details={**details, **_error_details(error)},
            order_link_id=link_id,
            now=now,
        )
        return FAILED
    status = _order_settle(gateway=gateway, order=order, now=now)
    order.refresh_from_db()
    details.update(
        {"order_status": status, "filled_qty": _text(order.filled_qty), "fill_price": _text(order.fill_price)}
    )
    if status == ORDER_FAILED:
        _journal(
            action="enter",
            outcome=FAILED,
            reason_code="not_filled",
            symbol=symbol,
            details={**details, "error": order.error},
            order_link_id=link_id,
            now=now,
        )
        return FAILED
    _journal(
        action="enter",
        outcome=TAKEN,
        reason_code="top_momentum",
        symbol=symbol,
        details=details,
        order_link_id=link_id,
        now=now,
    )
    logger.info("pm_entered symbol=%s qty=%s price=%s order_link_id=%s", symbol, qty, price, link_id)
    return TAKEN


# ----------------------------------------------------------------------------------
# The trail: high-water marks, trailing-stop exits, pyramid adds
# ----------------------------------------------------------------------------------


@dataclass
class TrailResult:
    """What one call of ``portfolio_trail_step`` did.

    ``status``: ``ran``, ``idle`` (PM holds nothing), ``busy`` (the scan held the book).
    ``adds_blocked``: why adds were off this pass (``disabled``, ``trading_not_allowed``).
    """

    status: str = "ran"
    high_water_raised: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)
    closed_elsewhere: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    adds_blocked: str = ""

    @property
    def found_work(self) -> bool:
        return bool(self.added or self.exited or self.closed_elsewhere or self.failed or self.settled)

    def summary(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def portfolio_trail_step(*, gateway: BybitGateway, now: datetime) -> TrailResult:
    """One minute of position care for every position PM holds.

    - Settles orders left pending, and keeps the Redis PM set equal to PM's positions.
    - A position the exchange no longer shows (daily flatten, panic, by hand) is closed
      in the book (``closed_elsewhere``); one the exchange shrank keeps the smaller size.
    - Raises each high-water mark to the last price (tickers).
    - Exits a long whose price is at or below its trailing level: a reduce-only close of
      PM's exact share, verified on the exchange before the symbol leaves the PM set.
      Exits run whatever the trading switches say.
    - Adds a leg to a winner (``portfolio.rules.pyramid_due``), within the budget, only
      while PM is enabled and trading is allowed.
    A failure to read tickers or positions raises (the task retries).
    """
    result = TrailResult()
    with _book_lock() as held:
        if not held:
            logger.info("pm_trail_busy")
            result.status = "busy"
            return result
        result.settled = _book_settle(gateway=gateway, now=now)
        pm_symbols_sync()
        positions = list(PortfolioPosition.objects.filter(status__in=[OPEN, CLOSING]).order_by("id"))
        if not positions:
            result.status = "idle"
            return result
        settings = PortfolioSettings.load()
        if not settings.enabled:
            result.adds_blocked = "disabled"
        elif not TradingState.load().may_trade(now):
            result.adds_blocked = "trading_not_allowed"
        tickers = {ticker.symbol: ticker for ticker in gateway.tickers()}
        venue_positions = gateway.positions()
        for position in positions:
            _trail_one(
                gateway=gateway,
                position=position,
                venue=_long_of(venue_positions, position.symbol),
                ticker=tickers.get(position.symbol),
                settings=settings,
                now=now,
                result=result,
            )
    return result


def _trail_one(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue: Position | None,
    ticker: Ticker | None,
    settings: PortfolioSettings,
    now: datetime,
    result: TrailResult,
) -> None:
    symbol = position.symbol
    if position.orders.filter(status=PENDING).exists():
        return  # an order of ours is in flight: decide nothing on top of it until it settles
    if position.status == CLOSING and position.qty <= 0:
        # Its exit filled in full earlier but could not be verified then: it can be now.
        order = position.orders.filter(leg=EXIT, status=FILLED).order_by("-id").first()
        exit_price = order.fill_price if order else None
        if _position_close(position=position, reason=position.exit_reason, exit_price=exit_price, now=now):
            result.exited.append(symbol)
            _journal(
                action="exit",
                outcome=TAKEN,
                reason_code=position.exit_reason or "trailing_stop",
                symbol=symbol,
                details={"fill_price": _text(exit_price), "note": "verified after the fact"},
                order_link_id=order.order_link_id if order else "",
                now=now,
            )
        return
    if venue is None:
        # Our long is gone and we did not close it: the daily flatten, a panic or a hand.
        price = ticker.last_price if ticker else None
        if _position_close(position=position, reason="closed_elsewhere", exit_price=price, now=now):
            result.closed_elsewhere.append(symbol)
            _journal(
                action="exit",
                outcome=TAKEN,
                reason_code="closed_elsewhere",
                symbol=symbol,
                details={"qty": _text(position.qty), "last_price": _text(price), "was": position.status},
                now=now,
            )
        return
    if venue.size < position.qty:
        _position_shrink(position=position, size=venue.size, now=now)
    if position.status == CLOSING:
        _exit_retry(gateway=gateway, position=position, venue=venue, ticker=ticker, now=now, result=result)
        return
    price = ticker.last_price if ticker is not None and ticker.last_price > 0 else venue.mark_price
    if price is None or price <= 0:
        return
    if position.high_water_price is None or price > position.high_water_price:
        raised = PortfolioPosition.objects.filter(
            Q(high_water_price__lt=price) | Q(high_water_price__isnull=True), pk=position.pk, status=OPEN
        ).update(high_water_price=price)
        if raised:
            position.high_water_price = price
            result.high_water_raised.append(symbol)
    if rules.trailing_stop_hit(
        price=price, high_water_price=position.high_water_price, trailing_stop_pct=settings.trailing_stop_pct
    ):
        _exit_start(
            gateway=gateway,
            position=position,
            venue=venue,
            price=price,
            settings=settings,
            now=now,
            result=result,
        )
        return
    if result.adds_blocked or position.last_add_price is None:
        return
    if rules.pyramid_due(
        price=price,
        last_add_price=position.last_add_price,
        pyramid_step_pct=settings.pyramid_step_pct,
        adds_made=position.adds_made,
        max_adds=settings.pyramid_max_adds,
    ):
        _add_send(gateway=gateway, position=position, price=price, settings=settings, now=now, result=result)


def _position_shrink(*, position: PortfolioPosition, size: Decimal, now: datetime) -> None:
    """The exchange holds less than PM's share (reduced by hand or by a risk action): PM owns what is left."""
    before = position.qty
    cost = position.cost_usdt * size / before if before > 0 else Decimal("0")
    if PortfolioPosition.objects.filter(pk=position.pk, qty=before).update(qty=size, cost_usdt=cost):
        position.qty, position.cost_usdt = size, cost
        _journal(
            action="reduce",
            outcome=TAKEN,
            reason_code="reduced_elsewhere",
            symbol=position.symbol,
            details={"qty_before": _text(before), "qty": _text(size)},
            now=now,
        )


def _exit_start(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue: Position,
    price: Decimal,
    settings: PortfolioSettings,
    now: datetime,
    result: TrailResult,
) -> None:
    claimed = PortfolioPosition.objects.filter(
        pk=position.pk, status=OPEN, exit_attempts=position.exit_attempts
    ).update(status=CLOSING, exit_reason="trailing_stop", exit_attempts=position.exit_attempts + 1)
    if claimed != 1:
        return
    position.refresh_from_db()
    details = {
        "price": _text(price),
        "high_water_price": _text(position.high_water_price),
        "trailing_stop_pct": _text(settings.trailing_stop_pct),
        "stop_price": _text(
            rules.trailing_stop_price(
                high_water_price=position.high_water_price, trailing_stop_pct=settings.trailing_stop_pct
            )
        ),
        "entry_price": _text(position.entry_price),
        "adds_made": position.adds_made,
    }
    _exit_send(
        gateway=gateway, position=position, venue=venue, price=price, details=details, now=now, result=result
    )


def _exit_retry(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue: Position,
    ticker: Ticker | None,
    now: datetime,
    result: TrailResult,
) -> None:
    """A closing position whose last exit attempt failed or filled only partly: send the next one."""
    attempt = position.exit_attempts
    if not PortfolioPosition.objects.filter(pk=position.pk, status=CLOSING, exit_attempts=attempt).update(
        exit_attempts=attempt + 1
    ):
        return
    position.exit_attempts = attempt + 1
    price = ticker.last_price if ticker is not None else venue.mark_price or venue.avg_price
    _exit_send(
        gateway=gateway,
        position=position,
        venue=venue,
        price=price,
        details={"retry": True, "price": _text(price)},
        now=now,
        result=result,
    )


def _exit_send(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    venue: Position,
    price: Decimal,
    details: dict,
    now: datetime,
    result: TrailResult,
) -> None:
    """Close PM's share reduce-only: the whole position when it is all PM's, else exactly PM's qty."""
    symbol = position.symbol
    link_id = order_link_id(
        strategy=STRATEGY,
        symbol=symbol,
        decision_key=f"p{position.pk}-exit{position.exit_attempts}",
        leg="exit",
    )
    qty = min(position.qty, venue.size)
    details = {**details, "qty": _text(qty), "position_size": _text(venue.size), "reduce_only": True}
    try:
        order = PortfolioOrder.objects.create(
            position=position, leg=EXIT, order_link_id=link_id, qty=qty, reference_price=price, created_at=now
        )
    except IntegrityError:
        return  # this attempt was already sent: it settles, then the next pass decides
    try:
        if qty == venue.size:
            gateway.close_position(position=venue, order_link_id=link_id)
        else:
            gateway.place_order(
                symbol=symbol, side=Side.SELL, qty=qty, order_link_id=link_id, reduce_only=True
            )
    except OrderOutcomeUnknown as error:
        result.failed.append(symbol)
        _journal(
            action="exit",
            outcome=FAILED,
            reason_code="outcome_unknown",
            symbol=symbol,
            details={**details, **_error_details(error)},
            order_link_id=link_id,
            now=now,
        )
        return
    except GatewayError as error:
        _leg_failed(order=order, reason=type(error).__name__, now=now)
        if isinstance(error, ReduceOnlyRejected) and _exit_verified(gateway=gateway, position=position):
            # 110017: nothing left to reduce, the long was closed meanwhile.
            _position_close(position=position, reason=position.exit_reason, exit_price=None, now=now)
            result.closed_elsewhere.append(symbol)
            _journal(
                action="exit",
                outcome=TAKEN,
                reason_code="closed_elsewhere",
                symbol=symbol,
                details=details,
                now=now,
            )
            return
        result.failed.append(symbol)
        if _journal_due(f"exit:{position.pk}:{type(error).__name__}"):
            _journal(
                action="exit",
                outcome=FAILED,
                reason_code=type(error).__name__,
                symbol=symbol,
                details={**details, **_error_details(error)},
                order_link_id=link_id,
                now=now,
            )
        logger.warning("pm_exit_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__)
        return
    status = _order_settle(gateway=gateway, order=order, now=now)
    order.refresh_from_db()
    details.update({"filled_qty": _text(order.filled_qty), "fill_price": _text(order.fill_price)})
    if status != FILLED:
        if status == ORDER_FAILED:
            result.failed.append(symbol)
        _journal(
            action="exit",
            outcome=FAILED if status == ORDER_FAILED else TAKEN,
            reason_code="not_filled" if status == ORDER_FAILED else "exit_sent",
            symbol=symbol,
            details={**details, "order_status": status, "error": order.error},
            order_link_id=link_id,
            now=now,
        )
        return
    if not _exit_verified(gateway=gateway, position=position):
        # Partly filled, or the exchange could not be read: stays closing, the next pass follows up.
        _journal(
            action="exit",
            outcome=TAKEN,
            reason_code="exit_unverified",
            symbol=symbol,
            details=details,
            order_link_id=link_id,
            now=now,
        )
        return
    _position_close(position=position, reason=position.exit_reason, exit_price=order.fill_price, now=now)
    result.exited.append(symbol)
    _journal(
        action="exit",
        outcome=TAKEN,
        reason_code=position.exit_reason or "trailing_stop",
        symbol=symbol,
        details=details,
        order_link_id=link_id,
        now=now,
    )
    logger.info(
        "pm_exited symbol=%s qty=%s fill_price=%s order_link_id=%s", symbol, qty, order.fill_price, link_id
    )


def _add_send(
    *,
    gateway: BybitGateway,
    position: PortfolioPosition,
    price: Decimal,
    settings: PortfolioSettings,
    now: datetime,
    result: TrailResult,
) -> None:
    """Add one leg to a winner, within the budget."""
    symbol = position.symbol
    number = position.adds_made + 1
    leg_usdt = rules.leg_usdt(
        budget_usdt=settings.budget_usdt,
        max_positions=settings.max_positions,
        pyramid_max_adds=settings.pyramid_max_adds,
    )
    committed = _book_committed()
    details = {
        "add": number,
        "max_adds": settings.pyramid_max_adds,
        "price": _text(price),
        "last_add_price": _text(position.last_add_price),
        "pyramid_step_pct": _text(settings.pyramid_step_pct),
        "budget_usdt": _text(settings.budget_usdt),
        "leg_usdt": _text(leg_usdt),
        "committed_usdt": _text(committed),
    }
    try:
        limits = gateway.instrument(symbol)
    except UnknownInstrument:
        return
    size = rules.leg_size(
        budget_usdt=settings.budget_usdt,
        committed_usdt=committed,
        leg_usdt=leg_usdt,
        price=price,
        limits=limits,
    )
    if size.reason is not None:
        if _journal_due(f"add-skip:{position.pk}:{number}:{size.reason}"):
            _journal(
                action="add",
                outcome=SKIPPED,
                reason_code=size.reason,
                symbol=symbol,
                details=details,
                now=now,
            )
        return
    details.update({"qty": _text(size.qty), "notional_usdt": _text(size.notional)})
    # The minute is part of the key: an add refused by the venue is retried next minute
    # under a new id, while a step run twice within the minute finds its own row.
    link_id = order_link_id(
        strategy=STRATEGY,
        symbol=symbol,
        decision_key=f"p{position.pk}-add{number}-{rules.time_bucket(now)}",
        leg="add",
    )
    try:
        with transaction.atomic():
            claimed = PortfolioPosition.objects.filter(
                pk=position.pk, status=OPEN, adds_made=position.adds_made
            ).update(adds_made=number)
            if claimed != 1:
                return
            order = PortfolioOrder.objects.create(
                position=position,
                leg=ADD,
                order_link_id=link_id,
                qty=size.qty,
                reference_price=price,
                created_at=now,
            )
    except IntegrityError:
        return  # already sent this minute
    position.adds_made = number
    try:
        gateway.place_order(
            symbol=symbol, side=Side.BUY, qty=size.qty, order_link_id=link_id, reference_price=price
        )
    except OrderOutcomeUnknown as error:
        result.failed.append(symbol)
        _journal(
            action="add",
            outcome=FAILED,
            reason_code="outcome_unknown",
            symbol=symbol,
            details={**details, **_error_details(error)},
            order_link_id=link_id,
            now=now,
        )
        return
    except GatewayError as error:
        _leg_failed(order=order, reason=type(error).__name__, now=now)
        result.failed.append(symbol)
        if _journal_due(f"add:{position.pk}:{type(error).__name__}"):
            _journal(
                action="add",
                outcome=FAILED,
                reason_code=type(error).__name__,
                symbol=symbol,
                details={**details, **_error_details(error)},
                order_link_id=link_id,
                now=now,
            )
        logger.warning("pm_add_failed symbol=%s code=%s error=%s", symbol, error.code, type(error).__name__)
        return
    status = _order_settle(gateway=gateway, order=order, now=now)
    order.refresh_from_db()
    details.update(
        {"order_status": status, "filled_qty": _text(order.filled_qty), "fill_price": _text(order.fill_price)}
    )
    if status == ORDER_FAILED:
        result.failed.append(symbol)
        _journal(
            action="add",
            outcome=FAILED,
            reason_code="not_filled",
            symbol=symbol,
            details={**details, "error": order.error},
            order_link_id=link_id,
            now=now,
        )
        return
    result.added.append(symbol)
    _journal(
        action="add",
        outcome=TAKEN,
        reason_code="pyramid_step",
        symbol=symbol,
        details=details,
        order_link_id=link_id,
        now=now,
    )
    logger.info(
        "pm_added symbol=%s add=%d qty=%s price=%s order_link_id=%s", symbol, number, size.qty, price, link_id
    )
