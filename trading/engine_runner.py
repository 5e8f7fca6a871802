"""Wires the liquidation engine to the venue, the database and Redis, and runs it.

Start-up order, nothing traded before the last step:
1. the gateway's one-off work (clock, instruments, position mode, DCP), retried
   until the venue answers (in ``make run`` the simulator may start after us); a DCP
   window the account may not have is best effort (journaled and alerted, never a stop);
2. configuration from the database, the instrument table refreshed, and the journal rows
   of our entries a crash lost before its flush rebuilt from the exchange's order history;
3. the account reconciled over REST (positions, open orders, IM %), cooldowns
   restored from the journal, leverage set for every enabled coin, VWAP windows
   seeded from REST klines;
4. the feeds, the private stream, the Redis event subscriber, the periodic
   reconciliation and the journal flusher start, and the engine is marked ready.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings

from core import keys
from core.process import every
from core.process import orm_call as _db
from trading import feeds
from trading.alerting import auth_error_text
from trading.bybit import BybitGateway, ExchangeMode
from trading.engine import (
    LATENCY_FIGURES,
    RECENT_LIQUIDATIONS,
    AccountView,
    LiquidationEngine,
    journal_rows,
)
from trading.engine_startup import dcp_outcome_note, journal_recover
from trading.errors import AuthError, GatewayError
from trading.worker_gateway import exchange_failure_note, exchange_ok_note

logger = logging.getLogger(__name__)

BYBIT_PUBLIC = {
    ExchangeMode.DEMO: "wss://stream.bybit.com/v5/public/linear",  # demo has no public stream of its own
    ExchangeMode.TESTNET: "wss://stream-testnet.bybit.com/v5/public/linear",
    ExchangeMode.LIVE: "wss://stream.bybit.com/v5/public/linear",
}
BYBIT_PRIVATE = {
    ExchangeMode.DEMO: "wss://stream-demo.bybit.com/v5/private",
    ExchangeMode.TESTNET: "wss://stream-testnet.bybit.com/v5/private",
    ExchangeMode.LIVE: "wss://stream.bybit.com/v5/private",
}


@dataclass(frozen=True)
class EngineEndpoints:
    liquidation_feed: str  # "sim", "binance" or "bybit"
    liquidation_url: str
    public_url: str
    private_url: str
    api_key: str
    api_secret: str

    @classmethod
    def from_settings(cls) -> EngineEndpoints:
        mode = ExchangeMode(settings.EXCHANGE_MODE)
        sim_ws = settings.SIM_BASE_URL.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        if mode is ExchangeMode.SIM:
            public, private = f"{sim_ws}/v5/public/linear", f"{sim_ws}/v5/private"
            key, secret = settings.SIM_API_KEY, settings.SIM_API_SECRET
        else:
            public, private = BYBIT_PUBLIC[mode], BYBIT_PRIVATE[mode]
            key, secret = settings.BYBIT_API_KEY, settings.BYBIT_API_SECRET
        feed = settings.LIQUIDATION_FEED
        liquidation_url = {
            "sim": f"{sim_ws}/ws/!forceOrder@arr",
            "binance": feeds.BINANCE_LIQUIDATION_URL,
            "bybit": public,
        }[feed]
        return cls(feed, liquidation_url, public, private, key, secret)


def account_from_exchange(gateway: BybitGateway) -> AccountView:
    """Blocking: the account over REST, for start-up and periodic reconciliation."""
    positions = gateway.positions()
    orders = gateway.open_orders()
    wallet = gateway.wallet()
    return AccountView(
        positions={p.symbol: p.size for p in positions},
        open_orders={o.order_id: o.symbol for o in orders if o.is_open and not o.reduce_only},
        im_pct=wallet.im_pct,
        equity=wallet.total_equity,
    )


class EngineRunner:
    def __init__(
        self,
        *,
        gateway: BybitGateway,
        endpoints: EngineEndpoints,
        reconcile_interval_s: float = 15.0,
        journal_interval_s: float = 0.5,
        config_interval_s: float = 30.0,
        startup_retry_s: float = 2.0,
        key_refused_retry_s: float = 10.0,
        feed_options: dict[str, Any] | None = None,
        mode: str | None = None,
    ) -> None:
        self.gateway = gateway
        self.endpoints = endpoints
        self.reconcile_interval_s = reconcile_interval_s
        self.journal_interval_s = journal_interval_s
        self.config_interval_s = config_interval_s
        self.startup_retry_s = startup_retry_s
        self.key_refused_retry_s = key_refused_retry_s
        self.feed_options = feed_options or {}
        self.engine: LiquidationEngine | None = None
        self.ready = asyncio.Event()
        self._feeds: list[feeds.WebsocketFeed] = []
        self._market_connects = 0
        self._last_liquidation_published = None  # the newest recent_liquidations entry already published
        # Who measured the published figures: readers compare the mode with their own and
        # the run id across reads, and never show another run's figures as current.
        self.run_info = {
            "run_id": uuid.uuid4().hex[:12],
            "mode": mode or settings.EXCHANGE_MODE,
            "liquidation_feed": endpoints.liquidation_feed if endpoints else None,
            "started_ms": time.time_ns() // 1_000_000,
        }
        self.phase = "starting"  # starting -> [waiting_for_venue] -> preparing -> running -> stopped
        self._alert_tasks: set[asyncio.Task] = set()  # alerts being sent, kept referenced until done
        self._feeds_started_ms = 0

    @classmethod
    def from_settings(cls, **options) -> EngineRunner:
        return cls(gateway=BybitGateway.from_settings(), endpoints=EngineEndpoints.from_settings(), **options)

    # -- start-up -------------------------------------------------------------

    async def _prepare_gateway(self, stop: asyncio.Event) -> bool:
        """Prepare the gateway, retrying until the venue answers. Each failure is recorded in
        the exchange status (the dashboard, /status and /api/health read it); a refused key is
        said once in plain words (what to fix) and retried less often: no retry cures it, but a
        key fixed on Bybit's side (IP allowlist, permissions) is picked up without a restart."""
        attempt = 0
        said = ""  # the refusal already logged in plain words, so it is said once per outage
        while not stop.is_set():
            retry_s = self.startup_retry_s
            try:
                await asyncio.to_thread(self.gateway.prepare)
                if attempt:
                    await asyncio.to_thread(exchange_ok_note)
                return True
            except GatewayError as error:
                attempt += 1
                self.phase = "waiting_for_venue"
                await self.publish_stats()
                await asyncio.to_thread(exchange_failure_note, error)
                if isinstance(error, AuthError):
                    retry_s = max(retry_s, self.key_refused_retry_s)
                    text = auth_error_text(error.code, error.message, mode=self.run_info["mode"])
                    if text != said:
                        said = text
                        logger.error("engine_api_key_refused %s", text)
                elif attempt == 1 or attempt % 30 == 0:
                    said = ""
                    logger.warning(
                        "engine_venue_unavailable attempt=%d error=%s code=%s",
                        attempt,
                        type(error).__name__,
                        getattr(error, "code", None),
                    )
            try:
                await asyncio.wait_for(stop.wait(), timeout=retry_s)
            except TimeoutError:
                pass
        return False

    async def _load_config(self) -> None:
        from trading.selectors import engine_config

        config = await asyncio.to_thread(_db, engine_config)
        self.engine.apply_config(config)

    async def _prepare_symbols(self, symbols: list[str], *, leverage: bool = True) -> None:
        """Leverage and VWAP history for coins that start trading (at start, or added later);
        with ``leverage=False`` only the history (after a market-stream reconnect)."""
        engine = self.engine
        for symbol in symbols:
            coin = engine.coins.get(symbol)
            if coin is None or symbol not in engine.instruments:
                continue
            try:
                if leverage:
                    await asyncio.to_thread(self.gateway.set_leverage, symbol=symbol, leverage=coin.leverage)
                klines = await asyncio.to_thread(
                    self.gateway.klines, symbol=symbol, limit=min(1000, coin.vwap_window_minutes + 1)
                )
            except GatewayError as error:
                logger.warning(
                    "engine_symbol_prepare_failed symbol=%s error=%s code=%s",
                    symbol,
                    type(error).__name__,
                    getattr(error, "code", None),
                )
                continue
            engine.seed_candles(symbol, klines)

    async def _reconcile(self) -> None:
        # When the reads began: the engine keeps what it did since (see apply_reconciled).
        started_ms = self.engine.clock_ms()
        account = await asyncio.to_thread(account_from_exchange, self.gateway)
        self.engine.apply_reconciled(account, started_ms=started_ms)

    async def start(self, stop: asyncio.Event) -> bool:
        """Everything before trading; False if stopped first."""
        from trading.selectors import recent_entry_times_ms
        from trading.services import instruments_store

        self.engine = LiquidationEngine(gateway=self.gateway, loop=asyncio.get_running_loop())
        # Replace the last run's figures at once: until this run publishes, a reader would
        # take them (ready, another mode's counts) for ours.
        await self.publish_stats()
        if not await self._prepare_gateway(stop):
            return False
        await asyncio.to_thread(_db, dcp_outcome_note, gateway=self.gateway)
        self.phase = "preparing"  # the venue answers: config, account, VWAP history
        await self.publish_stats()
        instruments = self.gateway.instruments.all()
        self.engine.set_instruments(instruments)
        await asyncio.to_thread(_db, instruments_store, instruments)
        await self._load_config()
        if not await self._recover_journal(stop):
            return False
        longest_cooldown = max((c.entry_cooldown_seconds for c in self.engine.coins.values()), default=0)
        self.engine.last_entry_ms.update(
            await asyncio.to_thread(_db, recent_entry_times_ms, within=timedelta(seconds=longest_cooldown))
        )
        await self._prepare_symbols(self._enabled_symbols())
        await self._reconcile()
        logger.info(
            "engine_ready coins=%d positions=%d open_orders=%d im_pct=%s",
            len(self.engine.coins),
            len(self.engine.account.positions),
            len(self.engine.account.open_orders),
            self.engine.account.im_pct,
        )
        return True

    async def _recover_journal(self, stop: asyncio.Event) -> bool:
        """Rows the last run lost (a crash before its journal flush), rebuilt from the exchange's
        order history before the cooldowns are read from the journal; retried like the venue."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(_db, journal_recover, gateway=self.gateway)
                return True
            except GatewayError as error:
                logger.warning(
                    "engine_journal_recovery_failed error=%s code=%s", type(error).__name__, error.code
                )
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.startup_retry_s)
            except TimeoutError:
                pass
        return False

    def _enabled_symbols(self) -> list[str]:
        return sorted(symbol for symbol, coin in self.engine.coins.items() if coin.enabled)

    # -- running --------------------------------------------------------------

    def _make_feeds(self) -> list[feeds.WebsocketFeed]:
        engine, endpoints, options = self.engine, self.endpoints, self.feed_options
        symbols = self._enabled_symbols()
        if endpoints.liquidation_feed == "bybit":
            liquidation = feeds.BybitLiquidationFeed(
                endpoints.liquidation_url, symbols=symbols, on_event=engine.on_event, **options
            )
        else:
            liquidation = feeds.BinanceLiquidationFeed(
                endpoints.liquidation_url,
                on_event=engine.on_event,
                source=endpoints.liquidation_feed,
                **options,
            )
        engine.frame_received_ns = lambda: liquidation.frame_received_ns
        market = feeds.BybitMarketFeed(
            endpoints.public_url,
            symbols=symbols,
            market=engine.market,
            on_connect=self._on_market_connect,
            **options,
        )
        private = feeds.BybitPrivateFeed(
            endpoints.private_url,
            api_key=endpoints.api_key,
            api_secret=endpoints.api_secret,
            on_update=engine.apply_private,
            disconnect_cancel_all=self.gateway.dcp_active,  # only with a window Bybit accepted
            **options,
        )
        self.liquidation_feed, self.market_feed = liquidation, market
        return [liquidation, market, private]

    def _on_market_connect(self) -> None:
        # Candles of the gap are missing after a reconnect: reseed from REST. The first
        # connection needs none: start() seeded the windows moments ago.
        self._market_connects += 1
        if self._market_connects > 1:
            asyncio.get_running_loop().create_task(
                self._prepare_symbols(self._enabled_symbols(), leverage=False)
            )

    def _venue_settings(self) -> dict[str, tuple[int, int]]:
        """Per enabled symbol, what the venue side depends on: leverage and VWAP window."""
        coins = self.engine.coins
        return {s: (coins[s].leverage, coins[s].vwap_window_minutes) for s in self._enabled_symbols()}

    async def _config_changed(self) -> None:
        before = self._venue_settings()
        await self._load_config()
        after = self._venue_settings()
        # New coins, and coins whose leverage or VWAP window changed: set the leverage,
        # and reseed the window (a longer one needs history the shorter one never kept).
        changed = [symbol for symbol, values in after.items() if before.get(symbol) != values]
        if changed:
            await self._prepare_symbols(changed)
        for feed in self._feeds:
            if isinstance(feed, (feeds.BybitMarketFeed, feeds.BybitLiquidationFeed)):
                await feed.update_symbols(sorted(after))

    async def _subscribe_events(self, stop: asyncio.Event) -> None:
        """Trading switches and config changes from Redis, as they happen."""
        import redis.asyncio as aioredis

        from core.redis_client import events_channel
        from trading.selectors import TradingFlags

        while not stop.is_set():
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(events_channel())
                    # Anything missed while (re)subscribing is picked up by a full reload.
                    await self._load_config()
                    while not stop.is_set():
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is None:
                            continue
                        try:
                            payload = json.loads(message["data"])
                        except (TypeError, ValueError):
                            continue
                        if payload.get("type") == "trading_state":
                            self.engine.apply_flags(TradingFlags.from_payload(payload))
                        elif payload.get("type") == "config":
                            await self._config_changed()
            except Exception as error:  # Redis gone: keep the last state, retry
                logger.warning("engine_events_disconnected error=%s", type(error).__name__)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=2)
                except TimeoutError:
                    pass
            finally:
                await client.aclose()

    async def _refresh_instruments(self) -> None:
        """Daily: Bybit revises qty filters twice a month and lists symbols any day."""
        from trading.services import instruments_store

        if await asyncio.to_thread(self.gateway.instruments.refresh_if_stale):
            instruments = self.gateway.instruments.all()
            self.engine.set_instruments(instruments)
            await asyncio.to_thread(_db, instruments_store, instruments)

    async def flush_journal(self) -> None:
        from core.redis_client import redis_client
        from trading.services import decisions_record

        pending = self.engine.take_journal()
        liquidations = self._take_new_liquidations()
        stats = self.stats()
        if pending:
            await asyncio.to_thread(_db, decisions_record, journal_rows(pending))
            self._alerts_hand_off(pending)
            await self._push_to_dashboard(pending)
        await asyncio.to_thread(redis_client().set, keys.ENGINE_STATS, json.dumps(stats))
        if liquidations:
            await asyncio.to_thread(_liquidations_store, liquidations)
            await self._group_send({"type": "liquidations", "liquidations": liquidations})

    def stats(self) -> dict[str, Any]:
        """The engine's figures with this run's identity, its phase and when they were taken."""
        return {
            **self.engine.stats(),
            **self.run_info,
            "phase": self.phase,
            "at_ms": time.time_ns() // 1_000_000,
        }

    async def publish_stats(self) -> None:
        """The figures alone, outside the journal flush (start-up, waiting for the venue)."""
        from core.redis_client import redis_client

        try:
            await asyncio.to_thread(redis_client().set, keys.ENGINE_STATS, json.dumps(self.stats()))
        except Exception as error:  # Redis down: the next flush publishes them
            logger.warning("engine_stats_publish_failed error=%s", type(error).__name__)

    # -- alerts (core.alerts): off the hot path and off the flush ------------------------

    def _alerts_hand_off(self, pending) -> None:
        """Entries and refused entries go to the alert hook from a thread of their own: an
        alert may wait seconds on Telegram, and neither the loop nor the next flush waits."""
        from trading.alerting import engine_journal_alerts

        rows = [p for p in pending if p.outcome != "skipped"]
        if not rows:
            return
        task = asyncio.create_task(asyncio.to_thread(_db, engine_journal_alerts, rows))
        self._alert_tasks.add(task)
        task.add_done_callback(self._alert_tasks.discard)

    async def _publish_feed_clocks(self) -> None:
        """When each feed last heard anything (wall clock ms; its start until its first
        frame), for the beat's feed-silent check (core.alert_checks)."""
        from core.redis_client import redis_client

        named = {"liquidation": self.liquidation_feed, "market": self.market_feed}
        clocks = {
            name: {
                "last_frame_ms": feed.frame_received_ns // 1_000_000 or self._feeds_started_ms,
                "connected": feed.stats.connected,
            }
            for name, feed in named.items()
        }
        payload = json.dumps({"at_ms": time.time_ns() // 1_000_000, "feeds": clocks})
        await asyncio.to_thread(redis_client().set, keys.ENGINE_FEEDS, payload)

    def _take_new_liquidations(self) -> list[dict]:
        """The engine's recent liquidations not yet published, oldest first, as dashboard rows.

        Runs on the loop, like the hot path that appends, so the deque cannot change meanwhile."""
        recent = self.engine.recent_liquidations
        if not recent or recent[-1] is self._last_liquidation_published:
            return []
        new = []
        for entry in reversed(recent):
            if entry is self._last_liquidation_published:
                break
            new.append(entry)
        self._last_liquidation_published = recent[-1]
        return [liquidation_row(*entry) for entry in reversed(new)]

    async def _push_to_dashboard(self, pending) -> None:
        decisions = [
            {
                "at_ms": p.at_ms,
                "strategy": "wl",
                "symbol": p.symbol,
                "action": p.action,
                "outcome": p.outcome,
                "reason_code": p.reason_code,
                "order_link_id": p.order_link_id,
                **{name: p.details[name] for name in LATENCY_FIGURES if name in p.details},
            }
            for p in pending
        ]
        await self._group_send({"type": "journal.decisions", "decisions": decisions})

    async def _group_send(self, message: dict) -> None:
        from channels.layers import get_channel_layer

        try:
            await get_channel_layer().group_send(keys.DASHBOARD_GROUP, message)
        except Exception as error:  # the record is written; a missed push only delays the page
            logger.warning(
                "engine_dashboard_push_failed type=%s error=%s", message["type"], type(error).__name__
            )

    async def run(self, stop: asyncio.Event) -> None:
        if not await self.start(stop):
            self.phase = "stopped"  # stopped before the venue answered: say so, not "waiting"
            await self.publish_stats()
            return
        self._feeds = self._make_feeds()
        self._feeds_started_ms = time.time_ns() // 1_000_000
        tasks = [asyncio.create_task(feed.run(), name=f"feed-{feed.name}") for feed in self._feeds]
        tasks += [
            asyncio.create_task(self._subscribe_events(stop), name="events"),
            asyncio.create_task(
                every(self.reconcile_interval_s, stop, self._reconcile, name="engine_reconcile")
            ),
            asyncio.create_task(
                every(self.config_interval_s, stop, self._config_changed, name="engine_config")
            ),
            asyncio.create_task(
                every(self.journal_interval_s, stop, self.flush_journal, name="engine_journal")
            ),
            asyncio.create_task(every(3600, stop, self._refresh_instruments, name="engine_instruments")),
            asyncio.create_task(every(5.0, stop, self._publish_feed_clocks, name="engine_feed_clocks")),
        ]
        self.phase = "running"
        self.ready.set()
        try:
            await stop.wait()
        finally:
            self.phase = "stopped"
            for feed in self._feeds:
                feed.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Orders already on the wire finish, and their outcomes are journaled.
            await asyncio.to_thread(self.engine.order_executor.shutdown, wait=True)
            await asyncio.sleep(0)
            await self.flush_journal()
            await asyncio.gather(*self._alert_tasks, return_exceptions=True)


def liquidation_row(seen_ms: int, event, result) -> dict:
    """A recent liquidation for the dashboard: what was liquidated and what the engine made of it."""
    reason = getattr(result, "reason", None)  # an Entry has none
    bybit_price, vwap = getattr(result, "price", None), getattr(result, "vwap", None)
    return {
        "at_ms": seen_ms,
        "event_ms": event.event_time,
        "event_age_ms": seen_ms - event.event_time,  # when the engine decided; see decide()'s clocks
        "symbol": event.symbol,
        "side": event.liquidated_side,
        "price": str(event.price),
        "qty": str(event.qty),
        "notional": str(event.notional),
        "source": event.source,
        "bybit_price": None if bybit_price is None else str(bybit_price),
        "vwap": None if vwap is None else str(vwap),
        "result": "entry" if reason is None else str(reason),
    }


def _liquidations_store(rows: list[dict]) -> None:
    """Append to the Redis list and keep the newest RECENT_LIQUIDATIONS, in one transaction."""
    from core.redis_client import redis_client

    with redis_client().pipeline(transaction=True) as pipe:
        pipe.rpush(keys.ENGINE_LIQUIDATIONS, *(json.dumps(row) for row in rows))
        pipe.ltrim(keys.ENGINE_LIQUIDATIONS, -RECENT_LIQUIDATIONS, -1)
        pipe.execute()


async def engine_main(stop: asyncio.Event) -> None:
    await EngineRunner.from_settings().run(stop)
