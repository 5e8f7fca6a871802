"""Portfolio momentum (PM): the scan step (``portfolio_scan_step``), due every
``scan_interval_minutes``: ranks the enabled allowlist by momentum and enters the best
symbols, long, at 1x, within the budget. The book's safety rules are in ``portfolio.book``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from core.models import TradingState
from core.panic_lock import trading_switches
from portfolio import rules
from portfolio.allowlist_journal import allowlist_changes, allowlist_changes_journal
from portfolio.backstop import backstop_set
from portfolio.book import (
    book_committed,
    book_lock,
    book_settle,
    leg_failed,
    leg_settle_journal,
    pm_set_add,
    pm_symbols_sync,
)
from portfolio.common import (
    ENTRY,
    FAILED,
    FILLED,
    OPENING,
    ORDER_JOURNAL,
    SKIPPED,
    STRATEGY,
    TAKEN,
    decimal_text,
    journal_write,
    momentum_text,
)
from portfolio.models import (
    AllowlistEntry,
    PortfolioOrder,
    PortfolioPosition,
    PortfolioSettings,
    PortfolioState,
)
from trading.bybit import BybitGateway, OrderAck, Ticker
from trading.errors import GatewayError, RetryableError, UnknownInstrument
from trading.models import Coin
from trading.order_flow import OrderStatus, order_send
from trading.rules import Side
from trading.rules.order_link_id import order_link_id

logger = logging.getLogger(__name__)

LEVERAGE = Decimal("1")  # PM never borrows: margin = notional


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
    entries: dict[str, dict] = field(default_factory=dict)  # symbol -> the entry's figures
    allowlist_added: list[str] = field(default_factory=list)
    allowlist_removed: list[str] = field(default_factory=list)
    dry_run: bool = False  # decided only: ``entered`` are the entries a scan would send

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
            "allowlist_added": list(self.allowlist_added),
            "allowlist_removed": list(self.allowlist_removed),
            "dry_run": self.dry_run,
        }


def portfolio_scan_step(
    *, gateway: BybitGateway, now: datetime, force: bool = False, dry_run: bool = False
) -> ScanResult:
    """Scan the allowlist and enter the top-momentum symbols, if a scan is due.

    Does nothing while PM is disabled. A scan is due ``scan_interval_minutes`` after the
    last one started; the worker that wins a conditional UPDATE of
    ``PortfolioState.last_scan_at`` runs it. While trading is not allowed a due scan is
    journaled as skipped and nothing is entered. The allowlist is read fresh each scan,
    so admin edits apply at the next scan; each scan journals what changed in it since the
    previous one (``allowlist``, ``allowlist_changed``).

    ``force`` scans now whether due or not (``manage.py portfolio_scan``: same lock, same
    claim, same journal). ``dry_run`` decides and reports without sending an order or
    writing anything (no claim, no journal, no settling), also while PM is disabled.

    A ``RetryableError`` while reading the market (before any order) gives the claim
    back and is raised, so the task's retry scans again.
    """
    settings = PortfolioSettings.load()
    if not settings.enabled and not dry_run:
        return ScanResult(status="disabled")
    interval = settings.scan_interval_minutes

    def due(last_scan_at: datetime | None) -> bool:
        return force or rules.scan_due(last_scan_at=last_scan_at, now=now, interval_minutes=interval)

    if not due(PortfolioState.load().last_scan_at):
        return ScanResult(status="not_due")
    with book_lock() as held:
        if not held:
            logger.info("pm_scan_busy")
            return ScanResult(status="busy")
        state = PortfolioState.load()
        if not due(state.last_scan_at):
            return ScanResult(status="not_due")
        key = rules.time_bucket(now)
        if dry_run:
            return _scan_dry_run(gateway=gateway, settings=settings, state=state, key=key, now=now)
        claimed = PortfolioState.objects.filter(
            pk=state.pk, last_scan_at=state.last_scan_at, last_scan_key=state.last_scan_key
        ).update(last_scan_at=now, last_scan_key=key)
        if claimed != 1:
            return ScanResult(status="not_due")  # another worker claimed it between our read and write
        result = ScanResult(status="scanned", scan_key=key)
        try:
            allowlist_changes_journal(state=state, key=key, now=now, result=result)
            result.settled = book_settle(gateway=gateway, now=now)
            pm_symbols_sync()
            trading = trading_switches()  # with a panic lock held in Redis (core.panic_lock)
            if not trading.may_trade(now):
                result.status = "trading_not_allowed"
                journal_write(
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


def _scan_dry_run(
    *, gateway: BybitGateway, settings: PortfolioSettings, state: PortfolioState, key: str, now: datetime
) -> ScanResult:
    result = ScanResult(status="scanned", scan_key=key, dry_run=True)
    result.allowlist_added, result.allowlist_removed = allowlist_changes(state)
    if not trading_switches().may_trade(now):
        result.status = "trading_not_allowed"
        return result
    _scan_run(gateway=gateway, settings=settings, key=key, now=now, result=result)
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
    coins = set(Coin.objects.filter(enabled=True, symbol__in=allowlist).values_list("symbol", flat=True))
    momenta: dict[str, Decimal | None] = {}
    instruments = {}
    for symbol in allowlist:
        if symbol in held:
            continue
        if symbol in coins:
            result.skipped[symbol] = rules.LIQUIDATION_COIN
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
    result.momenta = {symbol: momentum_text(value) for symbol, value in momenta.items()}
    result.skipped.update(ranking.skipped)
    leg_usdt = rules.leg_usdt(
        budget_usdt=settings.budget_usdt,
        max_positions=settings.max_positions,
        pyramid_max_adds=settings.pyramid_max_adds,
    )
    committed = book_committed()
    free_slots = settings.max_positions - len(held)
    # Down the ranking until the slots are filled: a symbol that can't be entered (too
    # small for its leg, refused) gives its slot to the next one; the rest keep no_free_slot.
    for rank, (symbol, momentum) in enumerate(ranking.ranked, start=1):
        if free_slots <= 0:
            break
        result.skipped.pop(symbol, None)
        base = {
            "momentum_pct": momentum_text(momentum),
            "rank": rank,
            "lookback_hours": lookback,
            "scan_key": key,
            "budget_usdt": decimal_text(settings.budget_usdt),
            "leg_usdt": decimal_text(leg_usdt),
            "committed_usdt": decimal_text(committed),
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
        details = {
            **base,
            "price": decimal_text(price),
            "qty": decimal_text(size.qty),
            "notional_usdt": decimal_text(size.notional),
        }
        result.entries[symbol] = details
        if result.dry_run:
            result.entered.append(symbol)
            committed += size.notional
            free_slots -= 1
            continue
        outcome = _entry_open(
            gateway=gateway,
            settings=settings,
            symbol=symbol,
            qty=size.qty,
            price=price,
            momentum=momentum,
            key=key,
            details=details,
            now=now,
        )
        if outcome == TAKEN:
            result.entered.append(symbol)
        elif outcome == FAILED:
            result.failed.append(symbol)
        else:
            result.skipped[symbol] = outcome
        committed = book_committed()
        free_slots = settings.max_positions - PortfolioPosition.objects.active().count()

    if result.dry_run:
        return  # decided, not journaled
    for symbol, reason in sorted(result.skipped.items()):
        details = {"momentum_pct": result.momenta.get(symbol), "scan_key": key}
        if reason == rules.BELOW_MIN_MOMENTUM:
            details["min_momentum_pct"] = decimal_text(settings.min_momentum_pct)
        journal_write(
            action="enter", outcome=SKIPPED, reason_code=reason, symbol=symbol, details=details, now=now
        )
    journal_write(
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
            "min_momentum_pct": decimal_text(settings.min_momentum_pct),
            "max_positions": settings.max_positions,
            "budget_usdt": decimal_text(settings.budget_usdt),
            "leg_usdt": decimal_text(leg_usdt),
        },
        now=now,
    )


def _entry_open(
    *,
    gateway: BybitGateway,
    settings: PortfolioSettings,
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
    pm_set_add(symbol)
    details = {**details, "leverage": str(LEVERAGE)}

    def place() -> OrderAck | None:
        # Read again now that WL stays away: a position opened since the scan's read is not ours.
        if gateway.positions(symbol=symbol):
            return None
        gateway.set_leverage(symbol=symbol, leverage=LEVERAGE)
        return gateway.place_order(
            symbol=symbol, side=Side.BUY, qty=qty, order_link_id=link_id, reference_price=price
        )

    outcome = order_send(
        journal=ORDER_JOURNAL,
        action="enter",
        symbol=symbol,
        order_link_id=link_id,
        place=place,
        details=details,
        now=now,
    )
    if outcome.status is OrderStatus.SKIPPED:
        leg_failed(order=order, reason="position_not_ours", now=now)
        return "position_not_ours"
    if outcome.status is OrderStatus.UNKNOWN:
        return FAILED  # it may be on the exchange: the row stays pending and a later pass settles it
    if outcome.status is OrderStatus.REFUSED:
        # Refused (or leverage/position reads failed): nothing was bought.
        leg_failed(order=order, reason=type(outcome.error).__name__, now=now)
        return FAILED
    if not leg_settle_journal(
        gateway=gateway,
        order=order,
        symbol=symbol,
        action="enter",
        taken_reason="top_momentum",
        details=details,
        now=now,
    ):
        return FAILED
    logger.info("pm_entered symbol=%s qty=%s price=%s order_link_id=%s", symbol, qty, price, link_id)
    order.refresh_from_db()
    if order.status == FILLED:
        # Protected on the exchange from the fill on; a pending entry gets it in the trail step.
        backstop_set(
            gateway=gateway,
            position=order.position,
            reference_price=order.fill_price,
            settings=settings,
            reason="entry",
            now=now,
        )
    return TAKEN
