"""The closes of one flatten round, sent at the exchange's own speed limit.

Bybit gives order creation two budgets per account that don't share: single
``/v5/order/create`` calls and ``/v5/order/create-batch`` (20 orders a request, each
order counted; default tier 10 + 10 orders per second). So the closes go out on two
lanes at once, biggest exposure first: the batch lane takes what its budget allows in
requests of up to 20, the single lane as many parallel calls as its budget allows.

Each lane sends a wave, then reads what is left of its budget from the answers
(``X-Bapi-Limit-Status``; per order in a batch, ``retExtInfo`` says which orders were
over). A lane whose budget is spent, or that was told 10006, waits for the reset time
the exchange named (``X-Bapi-Limit-Reset-Timestamp``), never a fixed pause, and then
sends the next wave. Before the first answer, the budget is the order-write limit the
round's cancel-all answer named (``X-Bapi-Limit``: create, batch and cancel-all have the
same limit per tier), or the default tier's 10 when unknown; a guess too high only costs
per-order 10006s, which are queued again.

A 110017 (nothing to reduce: the position changed since it was read) re-reads that
symbol alone and closes what the read shows, under a new orderLinkId. pybit blocks, so
the requests run on the flatten's thread pool; the gateway keeps one HTTP session per
thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from decimal import Decimal

from trading.bybit import BATCH_LIMIT, BatchItemResult, BybitGateway, Position, RateLimitStatus
from trading.bybit.http import RATE_LIMITED
from trading.errors import GatewayError, OrderOutcomeUnknown, ReduceOnlyRejected
from trading.rules.order_body import plain
from trading.rules.order_link_id import order_link_id

logger = logging.getLogger(__name__)

BATCH_METHOD = "place_batch_order"
SINGLE_METHOD = "place_order"
DEFAULT_BUDGET = 10  # Bybit's default tier: 10 orders per second per endpoint
WINDOW_S = 1.0  # Bybit's windows are one rolling second; the wait when no reset time was named
# Be just past the named reset, not just before it: our estimate of the venue's clock is
# off by up to a round trip's asymmetry (ms on a LAN, tens of ms over the internet or a
# loaded machine), and a close sent a hair early costs a 10006 and a whole window.
RESET_MARGIN_S = 0.025
MAX_SINGLES_IN_FLIGHT = 10
MAX_BATCHES_IN_FLIGHT = 5
REREADS_PER_POSITION = 2  # 110017 -> re-read the symbol; bounded, the next round reads again anyway


def exposure(position: Position) -> Decimal:
    """The position's value in USDT: what is at stake if it stays open."""
    if position.position_value is not None:
        return position.position_value
    return position.size * (position.mark_price or position.avg_price)


@dataclass
class CloseRecord:
    """One reduce-only close the exchange accepted; price and PnL filled in when it reports them."""

    symbol: str
    side: str  # the close order's side: Sell closes a long
    qty: str  # the position's size as read (dust below minOrderQty is sent as Bybit's qty "0" close-all)
    position_idx: int
    exposure: str  # the position's value when read, USDT
    order_link_id: str
    order_id: str = ""
    avg_price: str | None = None
    realised_pnl: str | None = None

    def as_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class CloseRoundOutcome:
    closes: list[CloseRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: dict[tuple[str, int | None], GatewayError] = field(default_factory=dict)
    rate_limited: int = 0  # orders the exchange answered 10006 for (queued again)
    rereads: int = 0  # symbols re-read after a 110017


@dataclass
class _Job:
    position: Position
    attempt: int = 0  # bumped on each re-read: a new orderLinkId

    @property
    def sort_key(self) -> Decimal:
        return -exposure(self.position)


@dataclass
class _Lane:
    method: str
    budget: int
    limit: int
    blocked_until: float = 0.0  # time.monotonic()
    in_flight: int = 0
    wave_remaining: int | None = None  # the lowest X-Bapi-Limit-Status of the wave's answers
    wave_reset_at_ms: int | None = None  # the latest reset named when the budget ran out
    wave_limited: bool = False  # some order of the wave was refused with 10006

    def begin_wave(self) -> None:
        self.wave_remaining, self.wave_reset_at_ms, self.wave_limited = None, None, False

    def note(self, status: RateLimitStatus | None, *, limited: bool, retry_at_ms: int | None) -> None:
        if status is not None:
            if status.limit:
                self.limit = status.limit
            if status.remaining is not None:
                seen = [status.remaining, self.wave_remaining]
                self.wave_remaining = min(value for value in seen if value is not None)
            if status.remaining == 0 and status.reset_at_ms:
                retry_at_ms = max(retry_at_ms or 0, status.reset_at_ms)
        if limited:
            self.wave_limited = True
        if (limited or (status is not None and status.remaining == 0)) and retry_at_ms:
            self.wave_reset_at_ms = max(self.wave_reset_at_ms or 0, retry_at_ms)


class RoundCloser:
    """Closes a list of positions for one round of ``positions_flatten``; see the module docstring."""

    def __init__(
        self,
        *,
        gateway: BybitGateway,
        pool: Executor,
        strategy: str,
        run_key: str,
        round_number: int,
        order_limit: int | None,
        previous: RoundCloser | None = None,
    ) -> None:
        """``order_limit``: the budget the round's cancel-all named; ``previous``: the last
        round's closer, whose lanes know better (what is left, and until when they wait)."""
        self.gateway = gateway
        self.pool = pool
        self.strategy = strategy
        self.decision_key = f"{run_key}:{round_number}"
        if previous is not None:
            self.batch, self.single = previous.batch, previous.single
        else:
            budget = order_limit or DEFAULT_BUDGET
            self.batch = _Lane(BATCH_METHOD, budget, budget)
            self.single = _Lane(SINGLE_METHOD, budget, budget)
        self.outcome = CloseRoundOutcome()
        self._pending: list[_Job] = []
        self._futures: dict[Future, Callable[[Future], None]] = {}
        self._rereads: dict[tuple[str, int], int] = {}

    def run(self, positions: list[Position]) -> CloseRoundOutcome:
        self._queue(*(_Job(position) for position in positions))
        while self._pending or self._futures:
            now = time.monotonic()
            self._dispatch(now)
            if not self._futures:
                # Every lane waits for the reset time the exchange named.
                time.sleep(max(0.0, self._next_unblock(now) - now))
                continue
            timeout = None
            if self._pending:
                unblock = self._next_unblock(now)
                timeout = max(0.0, unblock - now) if unblock > now else None
            done, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                self._futures.pop(future)(future)
        return self.outcome

    # -- sending -------------------------------------------------------------------------

    def _queue(self, *jobs: _Job) -> None:
        self._pending.extend(jobs)
        self._pending.sort(key=lambda job: job.sort_key)  # biggest exposure first

    def _next_unblock(self, now: float) -> float:
        blocked = [lane.blocked_until for lane in (self.batch, self.single) if lane.blocked_until > now]
        return min(blocked) if blocked else now

    def _ready(self, lane: _Lane, now: float) -> bool:
        if lane.in_flight or now < lane.blocked_until:
            return False
        if lane.budget <= 0:
            lane.budget = lane.limit  # the window named has rolled
        return True

    def _dispatch(self, now: float) -> None:
        if self._pending and self._ready(self.batch, now):
            take = min(self.batch.budget, len(self._pending), BATCH_LIMIT * MAX_BATCHES_IN_FLIGHT)
            jobs, self._pending = self._pending[:take], self._pending[take:]
            self.batch.begin_wave()
            self.batch.budget -= len(jobs)
            for start in range(0, len(jobs), BATCH_LIMIT):
                chunk = [(job, self._link_id(job)) for job in jobs[start : start + BATCH_LIMIT]]
                self.batch.in_flight += 1
                future = self.pool.submit(self._send_batch, chunk)
                self._futures[future] = lambda done, chunk=chunk: self._batch_answered(chunk, done)
        if self._pending and self._ready(self.single, now):
            take = min(self.single.budget, len(self._pending), MAX_SINGLES_IN_FLIGHT)
            jobs, self._pending = self._pending[:take], self._pending[take:]
            self.single.begin_wave()
            self.single.budget -= len(jobs)
            for job in jobs:
                link = self._link_id(job)
                self.single.in_flight += 1
                future = self.pool.submit(self._send_single, job.position, link)
                self._futures[future] = lambda done, job=job: self._single_answered(job, done)

    def _link_id(self, job: _Job) -> str:
        # Position index and attempt in the key: both sides of a hedge-mode symbol close in
        # one round, and a re-read close must not reuse the refused close's id.
        key = f"{self.decision_key}:{job.position.position_idx}:{job.attempt}"
        symbol = job.position.symbol
        return order_link_id(strategy=self.strategy, symbol=symbol, decision_key=key, leg="close")

    def _send_batch(self, chunk):
        try:
            results = self.gateway.close_positions_batch(closes=[(job.position, link) for job, link in chunk])
        except GatewayError as error:
            results = [BatchItemResult(link, None, error) for _, link in chunk]
        return results, self.gateway.rate_limit_status(BATCH_METHOD)

    def _send_single(self, position: Position, link: str):
        try:
            ack = self.gateway.close_position(position=position, order_link_id=link)
            result = BatchItemResult(link, ack, None)
        except GatewayError as error:
            result = BatchItemResult(link, None, error)
        return result, self.gateway.rate_limit_status(SINGLE_METHOD)

    # -- answers -------------------------------------------------------------------------

    def _batch_answered(self, chunk, future: Future) -> None:
        results, status = future.result()
        limited = any(_rate_limited(result) for result in results)
        self._lane_answered(self.batch, status, limited=limited, retry_at_ms=_retry_at(results))
        for (job, _link), result in zip(chunk, results, strict=True):
            self._settle(job, result)

    def _single_answered(self, job: _Job, future: Future) -> None:
        result, status = future.result()
        limited = _rate_limited(result)
        self._lane_answered(self.single, status, limited=limited, retry_at_ms=_retry_at([result]))
        self._settle(job, result)

    def _lane_answered(self, lane: _Lane, status, *, limited: bool, retry_at_ms: int | None) -> None:
        lane.in_flight -= 1
        lane.note(status, limited=limited, retry_at_ms=retry_at_ms)
        if lane.in_flight:
            return
        # The wave is back: what is left of the budget is what the exchange said.
        if lane.wave_remaining is not None:
            lane.budget = lane.wave_remaining
        if lane.wave_limited:
            lane.budget = 0
        if lane.budget <= 0:
            if lane.wave_reset_at_ms:
                wait_s = self.gateway.venue_seconds_until(lane.wave_reset_at_ms) + RESET_MARGIN_S
            else:
                wait_s = WINDOW_S
            lane.blocked_until = time.monotonic() + max(0.0, min(wait_s, WINDOW_S * 2))

    def _settle(self, job: _Job, result: BatchItemResult) -> None:
        position = job.position
        if result.ok:
            self.outcome.closes.append(
                CloseRecord(
                    symbol=position.symbol,
                    side=position.side.opposite.value,
                    qty=plain(position.size),
                    position_idx=position.position_idx,
                    exposure=plain(exposure(position)),
                    order_link_id=result.order_link_id,
                    order_id=result.ack.order_id if result.ack else "",
                )
            )
            return
        error = result.error
        if _rate_limited(result):
            self.outcome.rate_limited += 1
            self._queue(job)
            return
        if isinstance(error, ReduceOnlyRejected):
            key = (position.symbol, position.position_idx)
            if self._rereads.get(key, 0) < REREADS_PER_POSITION:
                self._rereads[key] = self._rereads.get(key, 0) + 1
                self.outcome.rereads += 1
                future = self.pool.submit(self.gateway.positions, symbol=position.symbol)
                self._futures[future] = lambda done, job=job: self._reread(job, done)
                return
        self.outcome.errors.append(f"{position.symbol}: {error.code} {error.message}")
        if not isinstance(error, ReduceOnlyRejected | OrderOutcomeUnknown):  # 110017: flat already, not news
            self.outcome.refused[(position.symbol, error.code)] = error

    def _reread(self, job: _Job, future: Future) -> None:
        """After a 110017: close what the symbol's fresh read shows on that side (if anything)."""
        try:
            fresh = future.result()
        except GatewayError as error:
            self.outcome.errors.append(f"{job.position.symbol}: re-read {error.code} {error.message}")
            return
        for position in fresh:
            if position.position_idx == job.position.position_idx and position.size > 0:
                logger.info(
                    "flatten_close_reread symbol=%s size=%s side=%s",
                    position.symbol,
                    position.size,
                    position.side.value,
                )
                self._queue(_Job(position, attempt=job.attempt + 1))
                return


def _rate_limited(result: BatchItemResult) -> bool:
    return result.error is not None and result.error.code == RATE_LIMITED


def _retry_at(results: list[BatchItemResult]) -> int | None:
    stamps = [getattr(result.error, "retry_at_ms", None) for result in results if _rate_limited(result)]
    stamps = [stamp for stamp in stamps if stamp]
    return max(stamps) if stamps else None
