"""The venue: one unified USDT account trading linear perpetuals against the market's price.

No I/O here. Handlers call these methods with parsed-enough request dicts; the
methods validate like Bybit (raising `SimError` with Bybit's retCode), change state,
and append what changed to `outbox` so the server can push it on the private streams.
Order fills happen inside the call (market orders, marketable limits) or inside
`on_price` (resting limits, TP/SL and conditional triggers).

`Exchange` is one object made of parts by job: order requests (orders.py), matching
and fills (matching.py), TP/SL and conditional orders (tpsl.py), trailing stops (trailing.py),
reads (queries.py) and the wallet's ledger: transfers, collateral, the transaction log (ledger.py).
This module keeps the state they share, account settings and the outbox.
"""

from decimal import Decimal

from . import params as p
from .errors import LEVERAGE_NOT_MODIFIED, MODE_NOT_MODIFIED, PARAMS_ERROR, POSITION_EXISTS, SimError, error
from .instruments import Instrument
from .ledger import Ledger
from .market import Market, wall_ms
from .matching import Matching
from .numbers import ONE, is_multiple
from .orders import OrderRequests
from .queries import Queries
from .state import HEDGE, ONE_WAY, Account, Order, Position, VenueConfig
from .tpsl import TakeProfitStopLoss
from .trailing import TrailingStops


class Exchange(OrderRequests, Matching, TakeProfitStopLoss, TrailingStops, Queries, Ledger):
    """One account on the venue: its state, settings and outbox; the parts above do the rest."""

    def __init__(self, instruments: dict[str, Instrument], market: Market, config: VenueConfig) -> None:
        self.instruments = instruments
        self.market = market
        self.config = config
        self.account = Account(wallet_balance=config.equity)
        self.outbox: list[tuple[str, object]] = []
        self._seq = 0

    # -- plumbing --------------------------------------------------------------------

    def reset(self, equity: Decimal) -> None:
        self.config.equity = equity
        self.account = Account(wallet_balance=equity)
        self.outbox.clear()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def instrument(self, params: dict) -> Instrument:
        symbol = p.text(params, "symbol", required=True)
        inst = self.instruments.get(symbol)
        if inst is None:
            raise SimError(PARAMS_ERROR, f"params error: symbol invalid: {symbol!r}")
        return inst

    def leverage(self, symbol: str) -> Decimal:
        return self.account.leverage.get(symbol, self.config.default_leverage)

    def position(self, symbol: str, idx: int) -> Position:
        key = (symbol, idx)
        position = self.account.positions.get(key)
        if position is None:
            now = wall_ms()
            position = Position(symbol, idx, now, now)
            self.account.positions[key] = position
        return position

    def position_indexes(self, symbol: str) -> tuple[int, ...]:
        return (1, 2) if symbol in self.account.hedge_symbols else (0,)

    def _open(self, symbol: str) -> dict:
        return self.account.open_orders.setdefault(symbol, {})

    def iter_open_orders(self):
        for orders in self.account.open_orders.values():
            yield from orders.values()

    # -- settings --------------------------------------------------------------------

    def set_leverage(self, request: dict) -> None:
        p.linear_category(request)
        inst = self.instrument(request)
        buy = p.decimal(request, "buyLeverage", required=True)
        sell = p.decimal(request, "sellLeverage", required=True)
        if buy != sell:
            raise SimError(PARAMS_ERROR, "params error: buyLeverage must equal sellLeverage")
        if not ONE <= buy <= inst.max_leverage or not is_multiple(buy, Decimal("0.01")):
            raise SimError(
                PARAMS_ERROR, f"leverage invalid: must be within [1, {inst.max_leverage}] in steps of 0.01"
            )
        if buy == self.leverage(inst.symbol):
            raise error(LEVERAGE_NOT_MODIFIED)
        self.account.leverage[inst.symbol] = buy
        for idx in self.position_indexes(inst.symbol):
            self._emit_position(inst.symbol, idx)
        self.outbox.append(("wallet", None))

    def switch_mode(self, request: dict) -> None:
        p.linear_category(request)
        mode = p.integer(request, "mode")
        if mode not in (ONE_WAY, HEDGE):
            raise SimError(PARAMS_ERROR, "params error: mode must be 0 (one-way) or 3 (hedge)")
        symbol = p.text(request, "symbol")
        coin = p.text(request, "coin")
        if symbol:
            symbols = [self.instrument(request).symbol]
        elif coin:
            symbols = [s for s, inst in self.instruments.items() if coin in (inst.base_coin, "USDT")]
        else:
            raise SimError(PARAMS_ERROR, "params error: symbol or coin is required")
        hedge = mode == HEDGE
        changing = [s for s in symbols if (s in self.account.hedge_symbols) != hedge]
        if not changing:
            raise error(MODE_NOT_MODIFIED)
        for s in changing:
            busy = any(pos.size != 0 for (ps, _), pos in self.account.positions.items() if ps == s)
            if busy or self._open(s):
                raise error(POSITION_EXISTS)
        for s in changing:
            for key in [key for key in self.account.positions if key[0] == s]:
                del self.account.positions[key]
            if hedge:
                self.account.hedge_symbols.add(s)
            else:
                self.account.hedge_symbols.discard(s)

    def set_dcp(self, request: dict) -> None:
        product = p.choice(request, "product", ("OPTIONS", "DERIVATIVES", "SPOT"), default="OPTIONS")
        window = p.integer(request, "timeWindow", default=None, low=3, high=300)
        if window is None:
            raise SimError(PARAMS_ERROR, "params error: timeWindow is required")
        self.account.dcp_windows[product] = window

    def dcp_window(self) -> int:
        return self.account.dcp_windows.get("DERIVATIVES", 10)

    # -- outbox ----------------------------------------------------------------------

    def _emit_order(self, order: Order) -> None:
        self.outbox.append(("order", order))

    def _emit_position(self, symbol: str, idx: int) -> None:
        self.outbox.append(("position", self.position(symbol, idx)))
