"""What a backtest runs with and what it gives back: the risk levels, trades, days, the result.

Plain records; ``runner.py`` fills them, ``report.py`` turns them into the summary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from risk.rules import DayOutcome

ZERO = Decimal(0)


@dataclass(frozen=True)
class RiskConfig:
    """The risk settings the run guards with (``risk.models.RiskSettings``'s fields, percent)."""

    equity_usdt: Decimal = Decimal("10000")
    im_warn_pct: Decimal = Decimal("50")
    im_reduce_pct: Decimal = Decimal("70")
    max_open_positions: int = 5
    daily_target_pct: Decimal = Decimal("10")
    daily_stop_pct: Decimal = Decimal("5")

    @classmethod
    def from_model(cls, risk) -> RiskConfig:
        return cls(
            equity_usdt=Decimal(str(risk.equity_usdt)),
            im_warn_pct=Decimal(str(risk.im_warn_pct)),
            im_reduce_pct=Decimal(str(risk.im_reduce_pct)),
            max_open_positions=int(risk.max_open_positions),
            daily_target_pct=Decimal(str(risk.daily_target_pct)),
            daily_stop_pct=Decimal(str(risk.daily_stop_pct)),
        )


@dataclass
class Trade:
    """One position from its entry fill to the fill that made it flat. Money in USDT.

    ``pnl`` is gross (price difference x qty); ``fees`` the entry's and the exits' fees;
    ``net`` = ``pnl - fees``. ``reason``: take_profit, stop_loss, tpsl_crossed,
    daily_target, daily_stop, or open (still held at the end; ``pnl`` then unrealised).
    """

    symbol: str
    side: str
    qty: Decimal
    entry_ms: int
    entry_price: Decimal
    decision_price: Decimal
    order_link_id: str
    liquidation: dict
    fees: Decimal = ZERO
    pnl: Decimal = ZERO
    exit_ms: int | None = None
    exit_price: Decimal | None = None
    reason: str = "open"

    @property
    def net(self) -> Decimal:
        return self.pnl - self.fees


@dataclass
class DayRecord:
    date: str
    baseline: Decimal
    end_equity: Decimal
    outcome: str = DayOutcome.OPEN.value
    fired_ms: int | None = None


@dataclass
class BacktestResult:
    start_equity: Decimal
    end_equity: Decimal = ZERO
    wallet_balance: Decimal = ZERO
    fees: Decimal = ZERO
    liquidations: int = 0
    price_steps: int = 0
    from_ms: int | None = None
    to_ms: int | None = None
    trades: list[Trade] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    skips: Counter = field(default_factory=Counter)
    equity_curve: list[tuple[int, Decimal]] = field(default_factory=list)
    days: list[DayRecord] = field(default_factory=list)
