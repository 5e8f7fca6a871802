"""The risk watch: the daily stop and the IM watch driven by the account's own streams.

The beat runs the daily control and the IM watch every 5 s; in a crash that is seconds of
losses past the stop line. This process (``manage.py run_risk_watch``, ``riskwatch`` in
the Procfile) follows the account between beats:

- the private stream (``wallet``, ``position``) keeps the equity without the perps'
  unrealised PnL, each position's signed size and entry price and Bybit's IM rate
  (``risk.account_marks``);
- the public ``tickers`` stream of every held symbol keeps its mark price.

Every mark, position and wallet update re-estimates the equity and compares it with the
day's target and stop (the same ``risk.rules`` the daily control uses, with the day's net
transfers as the daily control last read them: a deposit since then makes one check, whose
read of the transaction log puts it on the row, and the next estimate is right again). Only when the
estimate says a limit is reached does the watch ask the exchange: it runs the daily
control's own step (``risk.daily.daily_control_step``) at once, which reads the wallet
over REST and, if the limit is really reached, claims the day with its conditional
UPDATE (so with the beat running the same step, exactly one of them flattens) and
flattens. An estimated IM rate (the wallet's initial margin over its margin balance moved
by the same marks) that climbs to the warn or the reduce level runs the IM watch's step
the same way. Checks are single-flight: an update during a check leaves one more
check to run after it, never a queue, and a check that found the limit not reached
holds further ones back for ``recheck_s`` (the estimate lags fills by a moment).

Nothing here is needed for a limit to fire, only for it to fire fast: the beat stays the
safety net and does the day's rollover, and this process's death costs speed, not
protection (its heartbeat says when it is down).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal

from core.process import every
from core.process import orm_call as _orm
from risk import rules
from risk.account_marks import AccountMarks
from risk.rules import DayOutcome, ImAction
from risk.selectors import WatchedDay, watched_day
from trading import feeds
from trading.engine_runner import EngineEndpoints
from trading.errors import GatewayError, MalformedAnswer
from trading.events import MalformedMessage
from trading.worker_gateway import exchange_failure_note, exchange_step, worker_gateway

logger = logging.getLogger(__name__)

IM_LADDER = (ImAction.NONE, ImAction.WARN, ImAction.REDUCE)


class SingleFlight:
    """Run ``action`` now, or once more after the run in progress; never two at once, never a queue."""

    def __init__(self, action: Callable[[], Awaitable[None]]) -> None:
        self.action = action
        self.task: asyncio.Task | None = None
        self.again = False

    def request(self) -> None:
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.again = False
            try:
                await self.action()
            except Exception:
                logger.exception("risk_watch_check_failed")
            if not self.again:
                return

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


class RiskWatch:
    def __init__(
        self,
        *,
        endpoints: EngineEndpoints | None = None,
        gateway_factory: Callable = worker_gateway,
        refresh_s: float = 1.0,
        recheck_s: float = 0.25,
        retry_s: float = 2.0,
        feed_options: dict | None = None,
    ) -> None:
        self.endpoints = endpoints or EngineEndpoints.from_settings()
        self.gateway_factory = gateway_factory
        self.refresh_s, self.recheck_s, self.retry_s = refresh_s, recheck_s, retry_s
        self.feed_options = feed_options or {}
        self.marks = AccountMarks()
        self.day: WatchedDay | None = None
        self.account: str | None = None
        self.counts: Counter[str] = Counter()  # updates by kind, checks by trigger and outcome
        self.last_daily: dict | None = None  # the last daily check's summary
        self.last_acted: dict | None = None  # the summary of the last check that claimed a limit
        self.ready = asyncio.Event()
        self._daily = SingleFlight(self._daily_check)
        self._im = SingleFlight(self._im_check)
        self._hold_until = 0.0  # monotonic: no estimate-triggered check before this
        self._deferred: asyncio.TimerHandle | None = None
        self._im_level = ImAction.NONE  # the IM ladder's rung at the last look
        self._mark_feed: feeds.BybitMarkFeed | None = None
        self._trigger = ""

    # -- start ------------------------------------------------------------------------

    async def _start(self, stop: asyncio.Event) -> bool:
        """The account over REST, its reconciliation (``risk.reconcile``) and today's row,
        retried until the venue answers."""
        from risk.reconcile import account_reconcile_step

        while not stop.is_set():
            try:
                await self._reset_from_rest()
                summary = await asyncio.to_thread(
                    _orm, exchange_step, "risk.account_reconcile", account_reconcile_step
                )
                if summary.get("unknown"):
                    logger.warning("risk_watch_unknown_positions %s", summary)
                await self._refresh_day()
                return True
            except GatewayError as error:
                await asyncio.to_thread(exchange_failure_note, error)
                logger.warning(
                    "risk_watch_venue_unavailable error=%s code=%s", type(error).__name__, error.code
                )
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.retry_s)
            except TimeoutError:
                pass
        return False

    async def _reset_from_rest(self) -> None:
        def read():
            gateway = self.gateway_factory()
            return gateway.account_id(), gateway.wallet(), gateway.positions()

        self.account, wallet, positions = await asyncio.to_thread(read)
        self.marks.reset(wallet=wallet, positions=positions)
        await self._follow_symbols()

    async def _refresh_day(self) -> None:
        """Today's row and limits; the day's first pass (no row yet: a new day, or a new
        account) is the daily control's, run here at once."""
        today = rules.utc_date(datetime.now(UTC))
        day = await asyncio.to_thread(_orm, watched_day, account=self.account, today=today)
        if day is None:
            self._trigger = "new_day"
            await self._daily_check()
            day = await asyncio.to_thread(_orm, watched_day, account=self.account, today=today)
        self.day = day

    # -- stream updates ---------------------------------------------------------------

    def on_private(self, topic: str, rows: list[dict]) -> None:
        self.counts[topic] += 1
        try:
            if topic == "wallet":
                self.marks.apply_wallet(rows)
            elif topic == "position":
                self.marks.apply_positions(rows)
            else:
                return
        except MalformedAnswer as error:  # the feed counts and logs it; the estimate waits for REST
            raise MalformedMessage(f"bad_{topic}_row") from error
        if (
            topic == "position"
            and self._mark_feed is not None
            and self._mark_feed.symbols != self.marks.symbols()
        ):
            asyncio.get_running_loop().create_task(self._follow_symbols())
        self._look(topic)
        self._im_look()

    def on_mark(self, symbol: str, mark: Decimal) -> None:
        self.counts["mark"] += 1
        self.marks.apply_mark(symbol, mark)
        self._look("mark")
        self._im_look()

    def on_private_connect(self) -> None:
        # Rows missed while disconnected: start again from REST.
        asyncio.get_running_loop().create_task(self._reset_quietly())

    async def _reset_quietly(self) -> None:
        try:
            await self._reset_from_rest()
        except GatewayError as error:
            logger.warning("risk_watch_reset_failed error=%s code=%s", type(error).__name__, error.code)

    def estimated_outcome(self) -> DayOutcome | None:
        """The day's outcome at the estimated equity; None when it cannot be said."""
        day, equity = self.day, self.marks.equity_estimate()
        if day is None or not day.open or equity is None or day.baseline <= 0:
            return None
        figures = rules.daily_pnl(baseline=day.baseline, equity=equity, net_transfers=day.net_transfers)
        return rules.day_outcome(pnl_pct=figures.pnl_pct, target_pct=day.target_pct, stop_pct=day.stop_pct)

    def _look(self, trigger: str) -> None:
        outcome = self.estimated_outcome()
        if outcome is None or outcome is DayOutcome.OPEN:
            return
        held_s = self._hold_until - time.monotonic()
        if held_s > 0:  # look again when the hold ends, once
            if self._deferred is None:
                self._deferred = asyncio.get_running_loop().call_later(held_s, self._look_again, trigger)
            return
        self._trigger = trigger
        self._daily.request()

    def _look_again(self, trigger: str) -> None:
        self._deferred = None
        self._look(trigger)

    def _im_look(self) -> None:
        """The IM watch's step when the estimated IM rate climbs a rung of its ladder (none,
        warn, reduce) above the last one seen: a crossing, not every tick above a line (the
        step keeps its own cooldowns, and the beat runs it every 5 s besides)."""
        day = self.day
        im_pct = self.marks.im_pct_estimate()
        if day is None or im_pct is None:
            return
        level = rules.im_action(im_pct=im_pct, warn_pct=day.im_warn_pct, reduce_pct=day.im_reduce_pct)
        climbed = IM_LADDER.index(level) > IM_LADDER.index(self._im_level)
        self._im_level = level
        if climbed:
            self._im.request()

    async def _follow_symbols(self) -> None:
        if self._mark_feed is not None:
            await self._mark_feed.update_symbols(self.marks.symbols())

    # -- checks -----------------------------------------------------------------------

    async def _daily_check(self) -> None:
        from risk.daily import daily_control_step

        trigger = self._trigger or "estimate"
        started = time.perf_counter()
        summary = await asyncio.to_thread(_orm, exchange_step, "risk.daily_control", daily_control_step)
        self.last_daily = summary
        self.counts[f"daily_check_{trigger}"] += 1
        if summary.get("acted"):
            self.last_acted = summary
            self.counts["daily_acted"] += 1
            logger.warning(
                "risk_watch_daily_limit outcome=%s pnl_pct=%s flat=%s trigger=%s seconds=%.3f",
                summary.get("outcome"),
                summary.get("pnl_pct"),
                summary.get("flat"),
                trigger,
                time.perf_counter() - started,
            )
        elif summary.get("outcome") == DayOutcome.OPEN and trigger != "new_day":
            # The estimate said reached, the exchange did not: the estimate lags a fill.
            self._hold_until = time.monotonic() + self.recheck_s
        if self.account is not None and self.day is not None:
            self.day = await asyncio.to_thread(_orm, watched_day, account=self.account, today=self.day.date)

    async def _im_check(self) -> None:
        from risk.im_watch import im_watch_step

        summary = await asyncio.to_thread(_orm, exchange_step, "risk.im_watch", im_watch_step)
        self.counts[f"im_check_{summary.get('action', 'error')}"] += 1

    # -- running ----------------------------------------------------------------------

    async def _refresh(self) -> None:
        await self._refresh_day()
        self._look("refresh")

    async def run(self, stop: asyncio.Event) -> None:
        if not await self._start(stop):
            return
        endpoints = self.endpoints
        private = feeds.BybitPrivateFeed(
            endpoints.private_url,
            api_key=endpoints.api_key,
            api_secret=endpoints.api_secret,
            on_update=self.on_private,
            on_connect=self.on_private_connect,
            **self.feed_options,
        )
        self._mark_feed = feeds.BybitMarkFeed(
            endpoints.public_url, symbols=self.marks.symbols(), on_mark=self.on_mark, **self.feed_options
        )
        tasks = [
            asyncio.create_task(private.run(), name="riskwatch-private"),
            asyncio.create_task(self._mark_feed.run(), name="riskwatch-marks"),
            asyncio.create_task(
                every(self.refresh_s, stop, self._refresh, name="risk_watch_refresh"),
                name="riskwatch-refresh",
            ),
        ]
        logger.info(
            "risk_watch_ready account=%s positions=%d equity=%s",
            self.account,
            len(self.marks.positions),
            self.marks.equity,
        )
        self.ready.set()
        self._look("start")
        try:
            await stop.wait()
        finally:
            private.stop()
            self._mark_feed.stop()
            if self._deferred is not None:
                self._deferred.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._daily.wait()
            await self._im.wait()


async def risk_watch_main(stop: asyncio.Event) -> None:
    await RiskWatch().run(stop)
