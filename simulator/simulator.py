"""The running simulator: market, venue, limits, faults and streams tied to one clock.

`Simulator` owns all state (in memory, one asyncio loop) and the background tasks: the
replay, the still market's steady trades, the batched allLiquidation pushes and the
DCP watchdog. The aiohttp handlers (rest.py, ws.py, control.py) call into it.
"""

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from aiohttp import web

from . import payloads, payloads_wallet, replay
from .exchange import Exchange
from .faults import FaultBook
from .instruments import DEFAULT_INSTRUMENTS
from .market import MINUTE_MS, Market, MarketClock, wall_ms
from .numbers import fixed, plain
from .options import SimOptions
from .ratelimit import RateLimiter, order_limit_for_tier
from .replay import Liquidation, PricePoint, ReplayData
from .state import VenueConfig
from .streams import BINANCE, PRIVATE, Hub, dumps

PRIVATE_TOPICS = ("position", "order", "execution", "wallet")


class Simulator:
    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.keys = {options.api_key: options.api_secret}
        self.clock = MarketClock()
        self.replay_data: ReplayData | None = replay.load(options.data_dir) if options.data_dir else None
        instruments = self.replay_data.instruments if self.replay_data else dict(DEFAULT_INSTRUMENTS)
        self.market = Market(instruments, self.clock)
        self.exchange = Exchange(
            instruments,
            self.market,
            VenueConfig(
                maker_fee=options.maker_fee,
                taker_fee=options.taker_fee,
                slippage=options.slippage,
                default_leverage=options.default_leverage,
                equity=options.equity,
            ),
        )
        self.limiter = RateLimiter(order_limit_for_tier(options.rate_tier))
        self.rate_tier = options.rate_tier
        self.latency_ms = options.latency_ms
        self.dcp_enabled = options.dcp_enabled
        self.faults = FaultBook()
        self.hub = Hub()
        self.replay_status = "none" if self.replay_data is None else "idle"
        self.replay_emitted = 0
        self.replay_offset_ms = 0  # market time minus recorded time of the running replay
        self._replay_task: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping: asyncio.Event | None = None
        self._ticker_sent: dict[str, dict] = {}
        self._kline_bucket: dict[str, int] = {}
        self._liquidations: dict[str, list] = {}
        self._next_still_trade: dict[str, int] = {}
        self._cross_seq = 0
        self.dcp_armed = False
        self.dcp_gone_ms: int | None = None
        self.dcp_fired = 0
        if self.replay_data is None:
            now = self.clock.now_ms()
            for symbol in instruments:
                self.market.backfill(
                    symbol,
                    now,
                    options.backfill_minutes,
                    self._still_minute_volume(symbol),
                    self._still_trades_per_minute(),
                )

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._tasks = [loop.create_task(self._still_market_loop()), loop.create_task(self._dcp_watchdog())]
        if self.options.liquidation_batch_ms:
            self._tasks.append(loop.create_task(self._liquidation_flusher()))
        if self.replay_data is not None and self.options.replay_autostart:
            self.start_replay()

    async def hold(self, milliseconds: int) -> None:
        """Wait (an injected slow answer), but no longer than until the simulator stops."""
        try:
            await asyncio.wait_for(self._stopping.wait(), milliseconds / 1000)
        except TimeoutError:
            pass

    async def stop(self) -> None:
        self._stopping.set()
        tasks = self._tasks + ([self._replay_task] if self._replay_task else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.hub.close_all()

    # -- market moves ----------------------------------------------------------------

    def trade(self, symbol: str, price: Decimal, size: Decimal, side: str) -> None:
        """A public trade at `price`: the market, the venue's triggers and the streams follow."""
        now = self.clock.now_ms()
        trade = self.market.record_trade(symbol, price, size, side, now)
        self.exchange.on_price(symbol)
        self._publish_market(symbol, trade, now)
        self.flush()

    def set_price(self, symbol: str, price: Decimal) -> None:
        """`/sim/price`: the market trades at `price` with one steady-size trade."""
        last = self.market.last(symbol)
        side = "Sell" if price < last else "Buy"
        self.trade(symbol, price, self._still_chunk(symbol), side)

    def _publish_market(self, symbol: str, trade, now: int) -> None:
        hub = self.hub
        inst = self.market.instruments[symbol]
        topic = "publicTrade." + symbol
        if hub.has(topic):
            hub.publish(
                topic,
                {"topic": topic, "type": "snapshot", "ts": now, "data": [payloads.ws_trade_row(trade, inst)]},
            )
        topic = "tickers." + symbol
        if hub.has(topic):
            self._publish_ticker(symbol, now)
        for interval in ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M"):
            topic = f"kline.{interval}.{symbol}"
            if hub.has(topic):
                self._publish_kline(topic, symbol, interval, now)

    def ticker_snapshot(self, symbol: str, now: int) -> dict:
        row = payloads.ws_ticker_row(self.exchange, symbol, now)
        self._ticker_sent[symbol] = row
        self._cross_seq += 1
        return {
            "topic": "tickers." + symbol,
            "type": "snapshot",
            "data": row,
            "cs": self._cross_seq,
            "ts": now,
        }

    def _publish_ticker(self, symbol: str, now: int) -> None:
        row = payloads.ws_ticker_row(self.exchange, symbol, now)
        before = self._ticker_sent.get(symbol, {})
        changed = {key: value for key, value in row.items() if before.get(key) != value}
        self._ticker_sent[symbol] = row
        if not changed:
            return
        changed["symbol"] = symbol
        self._cross_seq += 1
        self.hub.publish(
            "tickers." + symbol,
            {
                "topic": "tickers." + symbol,
                "type": "delta",
                "data": changed,
                "cs": self._cross_seq,
                "ts": now,
            },
        )

    def kline_message(self, topic: str, symbol: str, interval: str, now: int, count: int = 1) -> dict | None:
        candles = self.market.klines(symbol, interval, None, None, count)
        if not candles:
            return None
        inst = self.market.instruments[symbol]
        rows = [payloads.ws_kline_row(candle, inst, now) for candle in reversed(candles)]
        for row, candle in zip(rows, reversed(candles), strict=True):
            row["interval"] = interval
            if interval != "1":
                row["end"] = _bucket_end(candle.start, interval)
                row["confirm"] = now > row["end"]
        return {"topic": topic, "data": rows, "ts": now, "type": "snapshot"}

    def _publish_kline(self, topic: str, symbol: str, interval: str, now: int) -> None:
        candles = self.market.klines(symbol, interval, None, None, 2)
        if not candles:
            return
        previous_start = self._kline_bucket.get(topic)
        self._kline_bucket[topic] = candles[0].start
        if previous_start is not None and previous_start != candles[0].start and len(candles) == 2:
            # The bucket rolled over: push the finished candle once more, confirmed.
            message = self.kline_message(topic, symbol, interval, now, 2)
            message["data"][0]["confirm"] = True
            message["data"] = message["data"][:1]
            self.hub.publish(topic, message)
        self.hub.publish(topic, self.kline_message(topic, symbol, interval, now, 1))

    # -- liquidations ----------------------------------------------------------------

    def liquidation(self, message: dict) -> None:
        """Push one Binance forceOrder event on the Binance stream and Bybit's allLiquidation."""
        order = message["o"]
        symbol = order["s"]
        text = None
        combined_text = None
        for connection in self.hub.of_kind(BINANCE):
            if connection.symbols is not None and symbol not in connection.symbols:
                continue
            if connection.combined:
                stream = "!forceOrder@arr" if connection.symbols is None else symbol.lower() + "@forceOrder"
                combined_text = combined_text or dumps({"stream": stream, "data": message})
                connection.send(combined_text)
            else:
                text = text or dumps(message)
                connection.send(text)
        topic = "allLiquidation." + symbol
        if self.hub.has(topic):
            # Bybit's S is the position side: a Binance SELL order liquidates a long ("Buy").
            row = {
                "T": order["T"],
                "s": symbol,
                "S": "Buy" if order["S"] == "SELL" else "Sell",
                "v": order["q"],
                "p": order["p"],
            }
            if self.options.liquidation_batch_ms:
                self._liquidations.setdefault(symbol, []).append(row)
            else:
                self.hub.publish(
                    topic, {"topic": topic, "type": "snapshot", "ts": self.clock.now_ms(), "data": [row]}
                )

    def inject_liquidation(
        self, symbol: str, side: str, price: Decimal, qty: Decimal, average_price: Decimal | None = None
    ) -> dict:
        now = self.clock.now_ms()
        inst = self.market.instruments.get(symbol)
        price_text = fixed(price, inst.tick_size) if inst else plain(price)
        qty_text = fixed(qty, inst.qty_step) if inst else plain(qty)
        message = {
            "e": "forceOrder",
            "E": now,
            "o": {
                "s": symbol,
                "S": side,
                "o": "LIMIT",
                "f": "IOC",
                "q": qty_text,
                "p": price_text,
                "ap": plain(average_price) if average_price is not None else price_text,
                "X": "FILLED",
                "l": qty_text,
                "z": qty_text,
                "T": now,
            },
        }
        self.liquidation(message)
        return message

    async def _liquidation_flusher(self) -> None:
        interval = self.options.liquidation_batch_ms / 1000
        while True:
            await asyncio.sleep(interval)
            if not self._liquidations:
                continue
            batches, self._liquidations = self._liquidations, {}
            now = self.clock.now_ms()
            for symbol, rows in batches.items():
                topic = "allLiquidation." + symbol
                self.hub.publish(topic, {"topic": topic, "type": "snapshot", "ts": now, "data": rows})

    # -- private streams -------------------------------------------------------------

    def flush(self) -> None:
        """Push what the last venue action changed to the private streams, one message per topic."""
        outbox = self.exchange.outbox
        if not outbox:
            return
        events = outbox[:]
        outbox.clear()
        hub = self.hub
        wanted = {topic for topic in PRIVATE_TOPICS if hub.has(topic) or hub.has(topic + ".linear")}
        if not wanted:
            return
        orders, positions, executions, wallet = {}, {}, [], False
        for kind, item in events:
            if kind == "order":
                orders[item.order_id] = item
            elif kind == "position":
                positions[(item.symbol, item.position_idx)] = item
            elif kind == "execution":
                executions.append(item)
            else:
                wallet = True
        instruments = self.exchange.instruments
        rows = {
            "order": lambda: [payloads.order_row(o, instruments.get(o.symbol)) for o in orders.values()],
            "execution": lambda: [payloads.ws_execution_row(e, instruments[e.symbol]) for e in executions],
            "position": lambda: [payloads.ws_position_row(self.exchange, pos) for pos in positions.values()],
            "wallet": lambda: [payloads_wallet.wallet_row(self.exchange.totals())],
        }
        present = {"order": orders, "execution": executions, "position": positions, "wallet": wallet}
        now = wall_ms()
        for topic in PRIVATE_TOPICS:
            if topic not in wanted or not present[topic]:
                continue
            data = rows[topic]()
            for name in (topic, topic + ".linear"):
                if hub.has(name):
                    hub.publish(
                        name, {"id": uuid.uuid4().hex, "topic": name, "creationTime": now, "data": data}
                    )

    # -- DCP -------------------------------------------------------------------------

    def dcp_connections(self) -> int:
        return sum(1 for c in self.hub.of_kind(PRIVATE) if c.dcp)

    def dcp_connection_gone(self) -> None:
        if self.dcp_connections() == 0:
            self.dcp_gone_ms = wall_ms()

    async def _dcp_watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            if (
                not self.dcp_enabled
                or not self.dcp_armed
                or self.dcp_gone_ms is None
                or self.dcp_connections()
            ):
                continue
            if wall_ms() - self.dcp_gone_ms >= self.exchange.dcp_window() * 1000:
                # Every dcp.future subscriber has been gone longer than the window.
                self.dcp_armed = False
                self.dcp_gone_ms = None
                self.dcp_fired += 1
                self.exchange.cancel_all_by_dcp()
                self.flush()

    # -- still market ----------------------------------------------------------------

    def _still_trades_per_minute(self) -> int:
        return max(1, MINUTE_MS // max(1, self.options.still_trade_interval_ms))

    def _still_minute_volume(self, symbol: str) -> Decimal:
        inst = self.market.instruments[symbol]
        volume = (self.options.still_minute_notional / self.market.last(symbol)).quantize(inst.qty_step)
        return max(volume, inst.qty_step * self._still_trades_per_minute())

    def _still_chunk(self, symbol: str) -> Decimal:
        inst = self.market.instruments[symbol]
        chunk = (self._still_minute_volume(symbol) / self._still_trades_per_minute()).quantize(inst.qty_step)
        return max(chunk, inst.qty_step)

    async def _still_market_loop(self) -> None:
        """Steady trades at the current prices whenever no replay drives the market."""
        interval = self.options.still_trade_interval_ms
        side_toggle = False
        while True:
            await asyncio.sleep(min(1.0, interval / 1000))
            if self.replay_status in ("idle", "running"):
                continue
            now = self.clock.now_ms()
            for symbol in self.market.symbols:
                due = self._next_still_trade.get(symbol)
                if due is None:
                    self._next_still_trade[symbol] = now - now % interval + interval
                    continue
                if now >= due:
                    self._next_still_trade[symbol] = now - now % interval + interval
                    side_toggle = not side_toggle
                    self.trade(
                        symbol,
                        self.market.last(symbol),
                        self._still_chunk(symbol),
                        "Buy" if side_toggle else "Sell",
                    )

    # -- replay ----------------------------------------------------------------------

    def start_replay(self, speed: float | None = None) -> None:
        if self.replay_data is None:
            raise ValueError("no replay data: start the simulator with --data DIR")
        if self.replay_status == "running":
            raise ValueError("the replay is already running")
        if speed is not None:
            self.options.speed = speed
        self.replay_status = "running"
        self._replay_task = asyncio.get_running_loop().create_task(self._run_replay())

    async def _run_replay(self) -> None:
        data = self.replay_data
        speed = self.options.speed
        now = self.clock.now_ms()
        # Rebase the recording onto the market clock, minute-aligned so that replayed
        # candles keep the recorded minute boundaries: the clock restarts at the current
        # minute's start (before any replay there are no candles to contradict that), and
        # a second run starts at the next minute after the first.
        current_minute = now - now % MINUTE_MS
        if any(book.candles for book in self.market.symbols.values()):
            current_minute += MINUTE_MS
        offset = current_minute - data.start_ms
        self.replay_offset_ms = offset
        # At speed 1 the market clock is the wall clock, like a real venue's: the part of
        # the first minute already past is played at once, then the replay runs in step with
        # the wall clock. Consumers compare event times with their own clock (the engine
        # skips liquidations older than a coin's max_event_age_ms), and a clock restarted
        # at the minute's start would lag ours by up to a minute. At other speeds market
        # time cannot be wall time.
        catch_up_until = now if speed == 1 and current_minute < now else None
        self.clock.run_at(current_minute, 0.0 if catch_up_until is not None or not speed else speed)
        try:
            emitted_since_yield = 0
            for event in data.timeline():
                at = event.time_ms + offset
                if catch_up_until is not None and at > catch_up_until:
                    self.clock.run_at(max(wall_ms(), self.clock.now_ms()), 1.0)
                    catch_up_until = None
                jumping = catch_up_until is not None or not speed
                if jumping:
                    self.clock.jump_to(at)
                else:
                    delay = (at - self.clock.now_ms()) / 1000 / speed
                    if delay > 0:
                        await asyncio.sleep(delay)
                if isinstance(event, PricePoint):
                    self.trade(event.symbol, event.price, event.size, event.side)
                else:
                    self.liquidation(_rebased(event, offset))
                    self.replay_emitted += 1
                emitted_since_yield += 1
                if jumping and emitted_since_yield >= 20:
                    # Let the websocket writers drain between bursts.
                    emitted_since_yield = 0
                    await asyncio.sleep(0)
        finally:
            self.clock.run_at(self.clock.now_ms(), 1.0)
            self.replay_status = "done"

    # -- control ---------------------------------------------------------------------

    def reset(self, equity: Decimal) -> None:
        self.exchange.reset(equity)
        self.configure(
            rate_tier=self.options.rate_tier,
            latency_ms=self.options.latency_ms,
            dcp_enabled=self.options.dcp_enabled,
        )
        self.limiter.reset()
        self.faults.clear()
        self.dcp_armed = self.dcp_connections() > 0
        self.dcp_gone_ms = None

    def configure(
        self, *, rate_tier: str | None = None, latency_ms: int | None = None, dcp_enabled: bool | None = None
    ) -> None:
        """Change the rate tier (a fresh window), the added latency and whether the account
        has DCP while running."""
        if rate_tier is not None:
            self.limiter = RateLimiter(order_limit_for_tier(rate_tier))  # ValueError on a bad name
            self.rate_tier = rate_tier
        if latency_ms is not None:
            self.latency_ms = latency_ms
        if dcp_enabled is not None:
            self.dcp_enabled = dcp_enabled

    def settings(self) -> dict:
        return {"rateTier": self.rate_tier, "latencyMs": self.latency_ms, "dcpEnabled": self.dcp_enabled}

    def state(self) -> dict:
        exchange = self.exchange
        positions = [
            payloads.position_row(exchange, pos)
            for key, pos in sorted(exchange.account.positions.items())
            if pos.size != 0
        ]
        return {
            "time": wall_ms(),
            "marketTime": self.clock.now_ms(),
            "orders": [payloads.state_order(order) for order in exchange.account.received],
            "positions": positions,
            "wallet": payloads_wallet.wallet_row(exchange.totals()),
            "prices": payloads.market_prices(self.market),
            "replay": {
                "status": self.replay_status,
                "liquidationsEmitted": self.replay_emitted,
                "offsetMs": self.replay_offset_ms,
            },
            "dcp": {
                "enabled": self.dcp_enabled,
                "window": exchange.dcp_window(),
                "subscribers": self.dcp_connections(),
                "armed": self.dcp_armed,
                "fired": self.dcp_fired,
            },
            "faults": self.faults.pending(),
            "settings": self.settings(),
            "connections": self._connection_counts(),
            "subscriptions": self.hub.topic_counts(),
        }

    def record(self) -> dict:
        """What the venue received and did, for after-the-fact checks (`GET /sim/record`):
        every order request in arrival order (refused ones with `rejectCode`) and every fill."""
        account = self.exchange.account
        return {
            "time": wall_ms(),
            "orders": [payloads.state_order(order) for order in account.received],
            "executions": [payloads.record_execution(execution) for execution in account.executions],
        }

    def _connection_counts(self) -> dict:
        counts: dict[str, int] = {}
        for connection in self.hub.connections:
            counts[connection.path] = counts.get(connection.path, 0) + 1
        return counts


# Where the aiohttp app keeps its Simulator, for every handler (rest.py, ws.py, control.py).
SIM_KEY = web.AppKey("simulator", Simulator)


def _rebased(event: Liquidation, offset: int) -> dict:
    """The recorded message with its times moved onto the market clock; all else verbatim."""
    message = dict(event.message)
    order = dict(message["o"])
    order["T"] = int(order["T"]) + offset
    message["o"] = order
    if "E" in message:
        message["E"] = int(message["E"]) + offset
    return message


def _bucket_end(start: int, interval: str) -> int:
    if interval == "M":
        moment = datetime.fromtimestamp(start / 1000, tz=UTC)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000) - 1
    lengths = {"D": 1440, "W": 10080}
    minutes = lengths.get(interval) or int(interval)
    return start + minutes * MINUTE_MS - 1
