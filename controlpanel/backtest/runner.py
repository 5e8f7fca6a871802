"""A recorded market through the live trading rules and the simulator's own matching, in-process.

One pass over the replay's timeline (``simulator.replay``: four price steps per 1-minute
kline, and the recorded Binance ``forceOrder`` messages), on a virtual clock: each event's
recorded time is ``now``. Nothing sleeps, nothing goes over HTTP or websockets. The steps
are laid out once as slots (``tape.py``) and walked between liquidations; only held
symbols' steps reach the venue, and a configured symbol's candles and price reach the
engine's view when a decision reads it (the same updates, applied late).

What runs is what trades live:

- each liquidation line goes through ``parse_binance_force_order`` and ``decide`` with the
  coin's ``CoinRule``, the symbol's ``MarketState`` (VWAP over the simulator's own 1-minute
  candles, as its kline stream sends them) and an ``AccountSnapshot`` built like the
  engine's (IM % from the venue's wallet, open positions, cooldowns, the daily lock);
- an ``Entry`` is sent to the simulator's ``Exchange`` in the body the gateway sends
  (``trading.rules.order_body``: a market order with the orderLinkId and TP/SL attached),
  and filled there at the taker price with slippage and the taker fee;
- after each fill the risk manager's TP/SL upkeep runs at once (``risk.rules.tpsl_prices``
  from the average entry price; a level the price already passed closes the position),
  where live it runs within 10 s;
- after every price step the daily control's rules (``risk.rules.daily_pnl`` /
  ``day_outcome``): at the target or the stop every position is closed reduce-only and
  entries are off until the next 00:00 UTC; the IM guard is ``decide``'s own
  (``im_above_warn`` / ``im_above_block``). The IM reduction ladder is not replayed: the
  guard blocks entries long before the reduce level with per-coin sizes.

Deterministic: the same data and configuration give the same figures; the simulator's
uuids and wall-clock stamps are never part of the result.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from controlpanel.backtest.records import BacktestResult, DayRecord, RiskConfig, Trade
from controlpanel.backtest.tape import MINUTE_MS, CatchUpMarket, SymbolKlines, price_slots
from risk.rules import DayOutcome, daily_pnl, day_outcome, tpsl_crossed, tpsl_needs_setting, tpsl_prices
from simulator.errors import SimError
from simulator.exchange import Exchange
from simulator.market import Market, MarketClock
from simulator.replay import Liquidation, ReplayData
from simulator.rules import unrealised_pnl
from simulator.state import STOP_LOSS, TAKE_PROFIT, VenueConfig
from trading.events import MalformedMessage
from trading.feeds import binance_force_order_event
from trading.instruments import Instrument
from trading.rules import Side
from trading.rules.decision import AccountSnapshot, CoinRule, Entry, decide
from trading.rules.order_body import order_body
from trading.rules.vwap import MarketState

DAY_MS = 86_400_000
# The replay's price path steps at 0, 20, 40 and 59 s of each minute, where a venue's
# ticker pushes every 100 ms: between steps the replayed price is the market's, so it is
# stale only when a whole minute passed without one (decide's 10 s would call every
# liquidation more than 10 s after a step stale, which the live engine never sees).
REPLAY_MAX_PRICE_AGE_MS = 61_000
ZERO = Decimal(0)
HUNDRED = Decimal(100)


def trading_instrument(inst) -> Instrument:
    """The simulator's instrument as ``instruments-info`` shows it to the engine."""
    return Instrument(
        symbol=inst.symbol,
        qty_step=inst.qty_step,
        min_order_qty=inst.min_qty,
        max_order_qty=inst.max_qty,
        max_market_order_qty=inst.max_market_qty,
        min_notional_value=inst.min_notional,
        tick_size=inst.tick_size,
        max_leverage=inst.max_leverage,
        status="Trading",
    )


class Backtest:
    """One run. ``run()`` once; the result is in ``result``."""

    def __init__(
        self,
        *,
        data: ReplayData,
        coins: dict[str, CoinRule],
        risk: RiskConfig,
        equity: Decimal = Decimal("10000"),
        from_ms: int | None = None,
        to_ms: int | None = None,
        venue: VenueConfig | None = None,
        tpsl_upkeep: bool = True,
    ) -> None:
        self.data = data
        self.coins = coins
        self.risk = risk
        # False: positions keep the TP/SL sent with the entry, as without a running worker.
        self.tpsl_upkeep = tpsl_upkeep
        self.from_ms = from_ms
        self.to_ms = to_ms
        config = venue or VenueConfig()
        config.equity = equity
        self.market = Market(data.instruments, MarketClock())
        self.exchange = Exchange(data.instruments, self.market, config)
        self.instruments = {symbol: trading_instrument(inst) for symbol, inst in data.instruments.items()}
        self.state = MarketState()
        self.state.configure(
            {symbol: [coin.vwap_window_minutes] for symbol, coin in coins.items() if coin.enabled}
        )
        # Steps before this were not played: the VWAP's warm-up before --from.
        self._played_from_ms = -1
        if from_ms is not None:
            longest = max((coin.vwap_window_minutes for coin in coins.values()), default=1)
            self._played_from_ms = from_ms - longest * MINUTE_MS
        self.klines = {
            symbol: SymbolKlines(symbol, rows, self.instruments[symbol].tick_size)
            for symbol, rows in data.klines.items()
        }
        self._slots = price_slots(data.klines)
        self._next_slot = 0
        self._last_minute: int | None = None
        self._markets = {
            symbol: CatchUpMarket(self.state.get(symbol), self.klines.get(symbol), self._played_from_ms)
            for symbol in self.state.symbols()
        }
        # Per symbol, the time of the last step the venue's market took.
        self._venue_step_ms: dict[str, int] = {}
        self.result = BacktestResult(start_equity=equity, from_ms=from_ms, to_ms=to_ms)
        self._seen_executions = 0
        self._open_trades: dict[str, Trade] = {}
        self._last_entry_ms: dict[str, int] = {}
        self._snapshot: AccountSnapshot | None = None
        self._disabled_until_ms: int | None = None
        self._day: DayRecord | None = None
        self._day_end_ms = 0
        self._wallet_moved = False
        self._close_reason = ""
        self._liquidation: dict = {}
        self._entry: Entry | None = None
        for symbol, coin in sorted(coins.items()):
            if symbol in data.instruments:
                self._set_leverage(symbol, coin.leverage)

    # -- the loop --------------------------------------------------------------------

    def run(self, progress: Callable[[int, int], None] | None = None) -> BacktestResult:
        with without_cycle_collection():
            return self._run(progress)

    def _run(self, progress: Callable[[int, int], None] | None) -> BacktestResult:
        liquidations = self.data.liquidations
        total = len(liquidations)
        for index, liquidation in enumerate(liquidations):
            now = liquidation.time_ms
            if self.to_ms is not None and now > self.to_ms:
                break
            # A price step of the same millisecond comes first: the liquidation sees its price.
            self._play_steps(now)
            if self.from_ms is None or now >= self.from_ms:
                self._liquidation_event(liquidation, now)
            if progress is not None and index % 1024 == 0:
                progress(index, total)
        self._play_steps(self.to_ms)
        if progress is not None:
            progress(total, total)
        self._finish()
        return self.result

    def _play_steps(self, until_ms: int | None) -> None:
        """The price steps up to ``until_ms`` (all of them for None), slot by slot.

        A slot changes nothing but the step count and the equity curve while nothing is
        held, no fill waits for the daily control and the day goes on: then its symbols'
        steps are only counted. Otherwise a held symbol's step, and every step while the
        daily control is due, goes through ``_price``.
        """
        slots = self._slots
        open_trades = self._open_trades
        result = self.result
        played_from = self._played_from_ms
        index = self._next_slot
        while index < len(slots):
            time_ms, step, members = slots[index]
            if until_ms is not None and time_ms > until_ms:
                break
            index += 1
            if time_ms < played_from:
                continue
            if not (open_trades or self._wallet_moved or time_ms >= self._day_end_ms):
                result.price_steps += len(members)
                self._equity_point(time_ms)
                continue
            first = True
            for symbol, row in members:
                if symbol in open_trades or self._wallet_moved or time_ms >= self._day_end_ms:
                    self._price(symbol, row, step, time_ms)
                else:
                    result.price_steps += 1
                if first:
                    first = False
                    self._equity_point(time_ms)
        self._next_slot = index

    def _equity_point(self, now: int) -> None:
        """The equity at the first step of each minute (from ``--from`` on)."""
        minute = now - now % MINUTE_MS
        if minute != self._last_minute and (self.from_ms is None or now >= self.from_ms):
            self._last_minute = minute
            self.result.equity_curve.append((minute, self._equity()))

    def _price(self, symbol: str, row: int, step: int, now: int) -> None:
        """One step of a held symbol, or of any symbol while the daily control is due.

        The venue's market takes the steps of the symbols we hold, which fire TP/SL and
        move the IM %; a symbol we do not hold only needs its last price at our next
        order there (``_venue_catch_up``: the simulator's trade tape, a uuid per trade,
        was most of a backtest's time). The engine's view of a configured symbol catches
        up when a decision reads it (``tape.CatchUpMarket``).
        """
        self.result.price_steps += 1
        held = symbol in self._open_trades
        if held:
            _, price, size, side = self.klines[symbol].path(row)[step]
            self.market.record_trade(symbol, price, size, side, now)
            self._venue_step_ms[symbol] = now
            self.exchange.on_price(symbol, now)
            self._snapshot = None  # the IM % moved
            self._new_executions(now)
        self._daily_control(now, held)

    def _venue_catch_up(self, symbol: str, now: int) -> None:
        """The venue's last price for ``symbol`` to its latest step, before an order there."""
        klines = self.klines.get(symbol)
        latest = None if klines is None else klines.latest_step(now, self._played_from_ms)
        if latest is None:
            return
        time_ms, price, size, side = klines.path(latest[0])[latest[1]]
        if time_ms > self._venue_step_ms.get(symbol, -1):
            self.market.record_trade(symbol, price, size, side, time_ms)
            self._venue_step_ms[symbol] = time_ms

    def _liquidation_event(self, liquidation: Liquidation, now: int) -> None:
        self.result.liquidations += 1
        try:
            event = binance_force_order_event(liquidation.message)
        except MalformedMessage:
            self.result.skips["malformed"] += 1
            return
        symbol = event.symbol
        market = self._markets.get(symbol)
        decision = decide(
            event,
            coin=self.coins.get(symbol),
            market=None if market is None else market.at(now),
            account=self._account(now),
            instrument=self.instruments.get(symbol),
            now_ms=now,
            max_price_age_ms=REPLAY_MAX_PRICE_AGE_MS,
        )
        if not decision.taken:
            self.result.skips[decision.reason.value] += 1
            return
        self._enter(decision, event, now)

    # -- orders ----------------------------------------------------------------------

    def _enter(self, entry: Entry, event, now: int) -> None:
        # The gateway's body (``BybitGateway.place_order``), one-way mode.
        request = order_body(
            symbol=entry.symbol,
            side=entry.side,
            qty=entry.qty,
            order_link_id=entry.order_link_id,
            position_idx=0,
            take_profit=entry.take_profit,
            stop_loss=entry.stop_loss,
        )
        # The engine's cooldown starts when the order is sent, whatever the answer.
        self._last_entry_ms[entry.symbol] = now
        self._snapshot = None
        order = {
            "time_ms": now,
            "symbol": entry.symbol,
            "side": entry.side.value,
            "qty": str(entry.qty),
            "decision_price": str(entry.price),
            "order_link_id": entry.order_link_id,
        }
        self._liquidation = {
            "event_id": event.event_id,
            "time_ms": event.event_time,
            "liquidated_side": event.liquidated_side,
            "price": str(event.price),
            "qty": str(event.qty),
            "notional": str(event.notional),
        }
        self._entry = entry
        self._venue_catch_up(entry.symbol, now)
        try:
            placed = self.exchange.place_order(request, received_ns=0, now_ms=now)
        except SimError as refusal:
            order["refused"] = refusal.code
            self.result.orders.append(order)
            self.result.skips[f"order_refused_{refusal.code}"] += 1
            return
        order["fill_price"] = str(placed.avg_price)
        self.result.orders.append(order)
        self._new_executions(now)
        if self.tpsl_upkeep:
            self._tpsl_upkeep(entry.symbol, now)

    def _close(self, symbol: str, reason: str, now: int) -> None:
        position = self.exchange.position(symbol, 0)
        if position.size == 0:
            return
        self._close_reason = reason
        try:
            self.exchange.place_order(
                {
                    "category": "linear",
                    "symbol": symbol,
                    "side": "Sell" if position.size > 0 else "Buy",
                    "orderType": "Market",
                    "qty": str(abs(position.size)),
                    "reduceOnly": True,
                    "positionIdx": 0,
                },
                received_ns=0,
                now_ms=now,
            )
        except SimError as refusal:
            self.result.skips[f"close_refused_{refusal.code}"] += 1
        self._new_executions(now)
        self._close_reason = ""

    def _set_leverage(self, symbol: str, leverage: int) -> None:
        try:
            self.exchange.set_leverage(
                {
                    "category": "linear",
                    "symbol": symbol,
                    "buyLeverage": str(leverage),
                    "sellLeverage": str(leverage),
                }
            )
        except SimError:
            pass  # 110043: already at this leverage

    # -- the risk manager's steps ----------------------------------------------------

    def _tpsl_upkeep(self, symbol: str, now: int) -> None:
        """``risk.tpsl``'s pass for one position, right after its fill."""
        position = self.exchange.position(symbol, 0)
        coin = self.coins.get(symbol)
        if position.size == 0 or coin is None:
            return
        side = Side.BUY if position.size > 0 else Side.SELL
        tick = self.instruments[symbol].tick_size
        wanted = tpsl_prices(
            position_side=side,
            avg_price=position.avg_price,
            take_profit_pct=coin.take_profit_pct,
            stop_loss_pct=coin.stop_loss_pct,
            tick_size=tick,
        )
        if tpsl_crossed(position_side=side, wanted=wanted, last_price=self.market.last(symbol)):
            self._close(symbol, "tpsl_crossed", now)
            return
        if not tpsl_needs_setting(
            take_profit=position.take_profit or None,
            stop_loss=position.stop_loss or None,
            wanted=wanted,
            tick_size=tick,
        ):
            return
        request = {
            "category": "linear",
            "symbol": symbol,
            "tpslMode": "Full",
            "positionIdx": 0,
            "stopLoss": str(wanted.stop_loss),
        }
        if wanted.take_profit is not None:
            request["takeProfit"] = str(wanted.take_profit)
        try:
            self.exchange.trading_stop(request)
        except SimError as refusal:
            self.result.skips[f"tpsl_refused_{refusal.code}"] += 1

    def _daily_control(self, now: int, held: bool) -> None:
        """``risk.daily``'s pass: the day's baseline, then the target and the stop."""
        day = self._day
        if day is None or now >= self._day_end_ms:
            day_start = now - now % DAY_MS
            self._day_end_ms = day_start + DAY_MS
            equity = self._equity()
            day = self._day = DayRecord(
                date=datetime.fromtimestamp(day_start / 1000, tz=UTC).date().isoformat(),
                baseline=equity,
                end_equity=equity,
            )
            self.result.days.append(day)
            return
        # Equity moves only with the price of a position held or a fill (a TP/SL close can reach the target).
        if day.outcome != DayOutcome.OPEN.value or not (held or self._wallet_moved):
            return
        self._wallet_moved = False
        equity = self._equity()
        figures = daily_pnl(baseline=day.baseline, equity=equity)
        outcome = day_outcome(
            pnl_pct=figures.pnl_pct,
            target_pct=self.risk.daily_target_pct,
            stop_pct=self.risk.daily_stop_pct,
        )
        if outcome is DayOutcome.OPEN:
            return
        day.outcome = outcome.value
        day.fired_ms = now
        self._disabled_until_ms = self._day_end_ms
        self._snapshot = None
        reason = "daily_target" if outcome is DayOutcome.TARGET_HIT else "daily_stop"
        for symbol in sorted(self._open_trades):
            self._close(symbol, reason, now)

    # -- the account as the engine sees it -------------------------------------------

    def _equity(self) -> Decimal:
        """The venue's margin balance (``totals().margin_balance``, the same sum in the same
        order) without the margin figures ``totals()`` adds: it runs at every held step."""
        account = self.exchange.account
        if not self._open_trades:
            return account.wallet_balance
        last = self.market.last
        unrealised = ZERO
        for position in account.positions.values():
            if position.size != 0:
                unrealised += unrealised_pnl(position.size, position.avg_price, last(position.symbol))
        return account.wallet_balance + unrealised

    def _account(self, now: int) -> AccountSnapshot:
        snapshot = self._snapshot
        # Rebuilt after a fill, an entry, the daily lock, or a held symbol's price step.
        if snapshot is None:
            im_pct = self.exchange.totals().im_rate * HUNDRED if self._open_trades else ZERO
            snapshot = self._snapshot = AccountSnapshot(
                equity_usdt=self.risk.equity_usdt,
                im_pct=im_pct,
                im_warn_pct=self.risk.im_warn_pct,
                im_block_pct=self.risk.im_reduce_pct,
                max_open_positions=self.risk.max_open_positions,
                disabled_until_ms=self._disabled_until_ms,
                open_position_symbols=frozenset(self._open_trades),
                last_entry_ms=self._last_entry_ms,
            )
        return snapshot

    def _new_executions(self, now: int) -> None:
        executions = self.exchange.account.executions
        if len(executions) == self._seen_executions:
            return
        fresh = executions[self._seen_executions :]
        self._seen_executions = len(executions)
        self._snapshot = None
        self._wallet_moved = True
        for execution in fresh:
            self._book_execution(execution)

    def _book_execution(self, execution) -> None:
        symbol = execution.symbol
        self.result.fees += execution.fee
        trade = self._open_trades.get(symbol)
        if execution.closed_size == 0:
            if trade is None:
                entry = self._entry
                trade = self._open_trades[symbol] = Trade(
                    symbol=symbol,
                    side=execution.side,
                    qty=ZERO,
                    entry_ms=execution.time_ms,
                    entry_price=execution.price,
                    decision_price=entry.price if entry is not None else execution.price,
                    order_link_id=execution.order.order_link_id,
                    liquidation=self._liquidation,
                )
            trade.qty += execution.qty
            trade.fees += execution.fee
            return
        trade.fees += execution.fee
        trade.pnl += execution.exec_pnl
        if self.exchange.position(symbol, 0).size == 0:
            order = execution.order
            if order.stop_order_type == TAKE_PROFIT:
                trade.reason = "take_profit"
            elif order.stop_order_type == STOP_LOSS:
                trade.reason = "stop_loss"
            else:
                trade.reason = self._close_reason or "closed"
            trade.exit_ms = execution.time_ms
            trade.exit_price = execution.price
            del self._open_trades[symbol]
            self.result.trades.append(trade)

    def _finish(self) -> None:
        for symbol in sorted(self._open_trades):
            trade = self._open_trades[symbol]
            position = self.exchange.position(symbol, 0)
            trade.pnl += unrealised_pnl(position.size, position.avg_price, self.market.last(symbol))
            trade.exit_price = self.market.last(symbol)
            self.result.trades.append(trade)
        self.result.trades.sort(key=lambda trade: (trade.entry_ms, trade.symbol))
        totals = self.exchange.totals()
        self.result.end_equity = totals.margin_balance
        self.result.wallet_balance = totals.wallet_balance
        if self._day is not None:
            self._day.end_equity = totals.margin_balance
        self._record_day_ends()

    def _record_day_ends(self) -> None:
        """Each day's closing equity: the next day's baseline (the last day's is the end)."""
        days = self.result.days
        for day, following in zip(days, days[1:], strict=False):
            day.end_equity = following.baseline


def backtest_directory(
    directory: str | Path,
    *,
    coins: dict[str, CoinRule],
    risk: RiskConfig,
    equity: Decimal = Decimal("10000"),
    from_ms: int | None = None,
    to_ms: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    tpsl_upkeep: bool = True,
) -> BacktestResult:
    """Load a replay directory (``simulator.replay`` layout) and run it once."""
    from simulator.replay import load

    with without_cycle_collection():
        data = load(directory)
        backtest = Backtest(
            data=data,
            coins=coins,
            risk=risk,
            equity=equity,
            from_ms=from_ms,
            to_ms=to_ms,
            tpsl_upkeep=tpsl_upkeep,
        )
        return backtest.run(progress)


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off for a backtest, back as it was after.

    A run allocates containers by the hundred thousand (the replay's messages, rows,
    events) and reference counting frees them: it makes no reference cycles
    (tests/backtest: nothing is left for ``gc.collect()``). The collector would still
    walk every object of the Django process each time the allocations pile up, a fifth
    of a run's time, to find nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
