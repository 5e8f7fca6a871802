"""A recorded market through the live trading rules and the simulator's own matching, in-process.

One pass over the replay's timeline (``simulator.replay``: four price steps per 1-minute
kline, and the recorded Binance ``forceOrder`` messages), on a virtual clock: each event's
recorded time is ``now``. Nothing sleeps, nothing goes over HTTP or websockets.

What runs is what trades live:

- each liquidation line goes through ``parse_binance_force_order`` and ``decide`` with the
  coin's ``CoinRule``, the symbol's ``MarketState`` (VWAP over the simulator's own 1-minute
  candles, as its kline stream sends them) and an ``AccountSnapshot`` built like the
  engine's (IM % from the venue's wallet, open positions, cooldowns, the daily lock);
- an ``Entry`` is sent to the simulator's ``Exchange`` as the gateway sends it (a market
  order with the orderLinkId and TP/SL attached, ``tpslMode=Full``), and filled there at
  the taker price with slippage and the taker fee;
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

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from controlpanel.backtest.records import BacktestResult, DayRecord, RiskConfig, Trade
from risk.rules import DayOutcome, daily_pnl, day_outcome, tpsl_crossed, tpsl_needs_setting, tpsl_prices
from simulator.errors import SimError
from simulator.exchange import Exchange
from simulator.market import Market, MarketClock
from simulator.numbers import round_to_step
from simulator.replay import Liquidation, PricePoint, ReplayData
from simulator.state import STOP_LOSS, TAKE_PROFIT, VenueConfig
from trading.events import MalformedMessage
from trading.feeds import parse_binance_force_order
from trading.instruments import Instrument
from trading.rules import Side
from trading.rules.decision import AccountSnapshot, CoinRule, Entry, decide
from trading.rules.vwap import Candle, MarketState

DAY_MS = 86_400_000
# The replay's price path steps at 0, 20, 40 and 59 s of each minute, where a venue's
# ticker pushes every 100 ms: between steps the replayed price is the market's, so it is
# stale only when a whole minute passed without one (decide's 10 s would call every
# liquidation more than 10 s after a step stale, which the live engine never sees).
REPLAY_MAX_PRICE_AGE_MS = 61_000
MINUTE_MS = 60_000
ZERO = Decimal(0)
HUNDRED = Decimal(100)


class _MinuteCandle:
    """The current minute of one symbol, built from the replay's steps as the venue builds
    its 1-minute candle (``simulator.market``): first step's price opens, volume and
    turnover (size x price) add up."""

    __slots__ = ("start", "open", "high", "low", "close", "volume", "turnover", "at_ms")

    def __init__(self, start: int, price: Decimal, size: Decimal, turnover: Decimal) -> None:
        self.start = start
        self.open = self.high = self.low = self.close = price
        self.volume = size
        self.turnover = turnover
        self.at_ms = start


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


def liquidation_lines(directory: str | Path) -> list[str]:
    """The raw forceOrder lines in the order ``simulator.replay`` plays them (stable sort by ``o.T``)."""
    path = Path(directory) / "liquidations.jsonl"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    keyed = [(int(json.loads(line)["o"]["T"]), line) for line in lines]
    keyed.sort(key=lambda item: item[0])
    return [line for _, line in keyed]


class Backtest:
    """One run. ``run()`` once; the result is in ``result``."""

    def __init__(
        self,
        *,
        data: ReplayData,
        lines: list[str],
        coins: dict[str, CoinRule],
        risk: RiskConfig,
        equity: Decimal = Decimal("10000"),
        from_ms: int | None = None,
        to_ms: int | None = None,
        venue: VenueConfig | None = None,
        tpsl_upkeep: bool = True,
    ) -> None:
        self.data = data
        self.raw_lines = {id(liq): line for liq, line in zip(data.liquidations, lines, strict=True)}
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
        self.result = BacktestResult(start_equity=equity, from_ms=from_ms, to_ms=to_ms)
        self._seen_executions = 0
        self._open_trades: dict[str, Trade] = {}
        self._last_entry_ms: dict[str, int] = {}
        self._snapshot: AccountSnapshot | None = None
        self._disabled_until_ms: int | None = None
        self._day: DayRecord | None = None
        self._day_end_ms = 0
        self._candles: dict[str, _MinuteCandle] = {}
        self._venue_behind: dict[str, PricePoint] = {}
        self._wallet_moved = False
        self._close_reason = ""
        self._liquidation: dict = {}
        self._entry: Entry | None = None
        for symbol, coin in sorted(coins.items()):
            if symbol in data.instruments:
                self._set_leverage(symbol, coin.leverage)

    # -- the loop --------------------------------------------------------------------

    def run(self, progress: Callable[[int, int], None] | None = None) -> BacktestResult:
        timeline = self.data.timeline()
        total = len(timeline)
        warmup_from = None
        if self.from_ms is not None:
            longest = max((coin.vwap_window_minutes for coin in self.coins.values()), default=1)
            warmup_from = self.from_ms - longest * MINUTE_MS
        last_minute = None
        for index, event in enumerate(timeline):
            now = event.time_ms
            if self.to_ms is not None and now > self.to_ms:
                break
            if type(event) is PricePoint:
                if warmup_from is not None and now < warmup_from:
                    continue
                self._price(event, now)
                minute = now - now % MINUTE_MS
                if minute != last_minute and (self.from_ms is None or now >= self.from_ms):
                    last_minute = minute
                    self.result.equity_curve.append((minute, self._equity()))
            else:
                if self.from_ms is not None and now < self.from_ms:
                    continue
                self._liquidation_event(event, now)
            if progress is not None and index % 2048 == 0:
                progress(index, total)
        if progress is not None:
            progress(total, total)
        self._finish()
        return self.result

    def _price(self, point: PricePoint, now: int) -> None:
        """One step of the replay's price path.

        The venue's market takes the steps of the symbols we hold, which fire TP/SL and
        move the IM %; a symbol we do not hold only needs its last price at our next
        order there, so its latest step waits in ``_venue_behind`` (the simulator's trade
        tape, a uuid per trade, was most of a backtest's time). The engine's view gets
        every step: the price, and the minute's candle as the kline stream sends it.
        """
        symbol = point.symbol
        self.result.price_steps += 1
        held = symbol in self._open_trades
        if held:
            self.market.record_trade(symbol, point.price, point.size, point.side, now)
            self.exchange.on_price(symbol, now)
            self._snapshot = None  # the IM % moved
            self._new_executions(now)
        else:
            self._venue_behind[symbol] = point
        view = self.state.get(symbol)
        if view is not None:
            price = round_to_step(point.price, self.instruments[symbol].tick_size)
            turnover = point.size * price
            minute = now - now % MINUTE_MS
            candle = self._candles.get(symbol)
            if candle is None or candle.start != minute:
                if candle is not None:
                    # A new minute: the VWAP takes the old one's final state first, as
                    # the kline stream's last update of that minute.
                    self._apply_candle(view, candle)
                candle = self._candles[symbol] = _MinuteCandle(minute, price, point.size, turnover)
            else:
                if price > candle.high:
                    candle.high = price
                elif price < candle.low:
                    candle.low = price
                candle.close = price
                candle.volume += point.size
                candle.turnover += turnover
            candle.at_ms = now
            view.apply_price(price, now)
            view.last_candle_ms = now
        if held or self._wallet_moved or now >= self._day_end_ms:
            self._daily_control(now, held)

    @staticmethod
    def _apply_candle(view, candle: _MinuteCandle) -> None:
        """The minute so far into the engine's VWAP, as one kline update.

        Only the latest state of a minute matters to the VWAP (each update replaces the
        open candle), so it is applied when a decision needs it and when the minute ends:
        the same VWAP as applying every update, for a fraction of the arithmetic.
        """
        view.apply_candle(
            Candle(
                candle.start,
                candle.open,
                candle.high,
                candle.low,
                candle.close,
                candle.volume,
                candle.turnover,
                False,
            ),
            candle.at_ms,
        )

    def _venue_catch_up(self, symbol: str) -> None:
        """The venue's last price for ``symbol`` to the latest step, before an order there."""
        point = self._venue_behind.pop(symbol, None)
        if point is not None:
            self.market.record_trade(symbol, point.price, point.size, point.side, point.time_ms)

    def _liquidation_event(self, liquidation: Liquidation, now: int) -> None:
        self.result.liquidations += 1
        try:
            event = parse_binance_force_order(self.raw_lines[id(liquidation)])
        except MalformedMessage:
            self.result.skips["malformed"] += 1
            return
        symbol = event.symbol
        candle = self._candles.get(symbol)
        if candle is not None:
            self._apply_candle(self.state.get(symbol), candle)
        decision = decide(
            event,
            coin=self.coins.get(symbol),
            market=self.state.get(symbol),
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
        request = {
            "category": "linear",
            "symbol": entry.symbol,
            "side": entry.side.value,
            "orderType": "Market",
            "qty": str(entry.qty),
            "orderLinkId": entry.order_link_id,
            "positionIdx": 0,
            "stopLoss": str(entry.stop_loss),
            "tpslMode": "Full",
        }
        if entry.take_profit is not None:
            request["takeProfit"] = str(entry.take_profit)
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
        self._venue_catch_up(entry.symbol)
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
        if not self._open_trades:
            return self.exchange.account.wallet_balance
        return self.exchange.totals().margin_balance

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
        from simulator import rules as venue_rules

        for symbol in sorted(self._open_trades):
            trade = self._open_trades[symbol]
            position = self.exchange.position(symbol, 0)
            trade.pnl += venue_rules.unrealised_pnl(
                position.size, position.avg_price, self.market.last(symbol)
            )
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

    data = load(directory)
    backtest = Backtest(
        data=data,
        lines=liquidation_lines(directory),
        coins=coins,
        risk=risk,
        equity=equity,
        from_ms=from_ms,
        to_ms=to_ms,
        tpsl_upkeep=tpsl_upkeep,
    )
    return backtest.run(progress)
