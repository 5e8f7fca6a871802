"""Pure rules of the profit & risk manager: daily PnL and its limits, the IM% ladder,
reduce sizes, TP/SL prices. Plain functions over plain data; no I/O.

Percentages are percent (``Decimal("10")`` = 10 %); money is USDT; quantities are
base coin; prices are USDT per coin. Everything is ``Decimal``; times are aware UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from trading.rules import Side
from trading.rules.order_link_id import strategy_of
from trading.rules.rounding import round_qty, round_stop_loss, round_take_profit

HUNDRED = Decimal("100")
ONE = Decimal("1")
ZERO = Decimal("0")
# DailyPnL stores four decimal places.
PLACES = Decimal("0.0001")


# -- daily PnL ------------------------------------------------------------------


class DayOutcome(enum.StrEnum):
    """The same words as ``risk.models.DailyPnL.Outcome``."""

    OPEN = "open"
    TARGET_HIT = "target_hit"
    STOP_HIT = "stop_hit"


@dataclass(frozen=True, slots=True)
class DailyFigures:
    pnl_usdt: Decimal
    pnl_pct: Decimal


def money(value: Decimal) -> Decimal:
    """An equity figure at the record's four decimals (half-even: a record, not a decision)."""
    return value.quantize(PLACES, rounding=ROUND_HALF_EVEN)


def daily_pnl(*, baseline: Decimal, equity: Decimal, net_transfers: Decimal = ZERO) -> DailyFigures:
    """PnL of ``equity`` against the day's ``baseline``, in USDT and in percent of the baseline.

    ``net_transfers`` is the money moved into the account since the baseline minus the money
    moved out (deposits, withdrawals, transfers: ``transfer_value``). It is not PnL, so it
    is taken out of the equity change, and the percent stays of the baseline: a transfer
    moves neither figure, whatever else the day did.

    Both are cut to four decimals *toward zero*: the stored percent is never further
    from zero than the true one, so comparing it with the target or the stop can
    never fire a limit that was not actually reached (9.99996 % stays 9.9999 %).
    """
    if baseline <= 0:
        raise ValueError(f"baseline equity must be positive, got {baseline}")
    change = equity - baseline - net_transfers
    return DailyFigures(
        pnl_usdt=change.quantize(PLACES, rounding=ROUND_DOWN),
        pnl_pct=(change / baseline * HUNDRED).quantize(PLACES, rounding=ROUND_DOWN),
    )


def limit_equities(
    *, baseline: Decimal, target_pct: Decimal, stop_pct: Decimal, net_transfers: Decimal = ZERO
) -> tuple[Decimal, Decimal]:
    """The equity at which the day's target and stop fire: baseline x (1 + target %), x (1 - stop %),
    both moved by the day's net transfers."""
    return (
        baseline * (1 + target_pct / HUNDRED) + net_transfers,
        baseline * (1 - stop_pct / HUNDRED) + net_transfers,
    )


# -- transfers: money moved in or out, not PnL -----------------------------------------------
#
# Bybit's transaction log (GET /v5/account/transaction-log, UTA; bybit-exchange/docs
# docs/v5/account/transaction-log.mdx and docs/v5/enum.mdx#typeuta-translog, July 2026):
# rows carry ``type``, ``currency``, ``cashFlow`` (realised PnL or a transfer, no fee),
# ``change`` (= cashFlow + funding - fee: what the coin's wallet balance moved by) and
# ``transactionTime`` (ms). ``TRANSFER_IN``/``TRANSFER_OUT`` are "assets that transferred
# into/out from Unified wallet": a deposit reaches the trading account, and a withdrawal
# leaves it, that way. The types below move money between the wallet and something else
# (another account, an earn product, a loan desk); none of them is the result of trading.
# The docs do not say whether a transfer out's change is negative, so a type whose name
# says its direction counts by that; the earn products' types (subscription out, refund
# and redemption back) count by the sign of their change.
TRANSFERS_IN = frozenset(
    {
        "TRANSFER_IN",
        "BONUS_TRANSFER_IN",
        "PEF_TRANSFER_IN",
        "TRANSFER_IN_INS_LOAN",
        "INSTITUTION_LOAN_TRANSFER_IN",
        "DBS_CASH_IN",
        "DBS_CASH_IN_TR",
    }
)
TRANSFERS_OUT = frozenset(
    {
        "TRANSFER_OUT",
        "BONUS_TRANSFER_OUT",
        "PEF_TRANSFER_OUT",
        "TRANSFER_OUT_INS_LOAN",
        "INSTITUTION_LOAN_TRANSFER_OUT",
        "PREMARKET_TRANSFER_OUT",
        "DBS_CASH_OUT",
        "DBS_CASH_OUT_TR",
    }
)
TRANSFERS_SIGNED = frozenset(
    {
        "FLEXIBLE_STAKING_SUBSCRIPTION",
        "FLEXIBLE_STAKING_REDEMPTION",
        "FLEXIBLE_STAKING_REFUND",
        "FIXED_STAKING_SUBSCRIPTION",
        "FIXED_STAKING_REFUND",
        "ONCHAINEARN_SUBSCRIPTION",
        "ONCHAINEARN_REDEMPTION",
        "ONCHAINEARN_REFUND",
        "STRUCTURE_PRODUCT_SUBSCRIPTION",
        "STRUCTURE_PRODUCT_REFUND",
        "CLASSIC_WEALTH_MANAGEMENT_SUBSCRIPTION",
        "PREMIMUM_WEALTH_MANAGEMENT_SUBSCRIPTION",
        "PREMIMUM_WEALTH_MANAGEMENT_REFUND",
        "LIQUIDITY_MINING_SUBSCRIPTION",
        "LIQUIDITY_MINING_REFUND",
        "PWM_SUBSCRIPTION",
        "PWM_REFUND",
        "DEFI_INVESTMENT_SUBSCRIPTION",
        "DEFI_INVESTMENT_REFUND",
        "DEFI_INVESTMENT_REDEMPTION",
    }
)
# Worth one USD when the wallet does not say (it values only the coins it holds).
STABLECOINS = frozenset({"USDT", "USDC"})


def is_transfer(log_type: str) -> bool:
    return log_type in TRANSFERS_IN or log_type in TRANSFERS_OUT or log_type in TRANSFERS_SIGNED


def transfer_amount(*, log_type: str, change: Decimal, cash_flow: Decimal) -> Decimal:
    """A transfer row's signed amount in its coin (+ in, - out); 0 for a row that is no transfer.

    The wallet moved by ``change``; a row that shows none falls back to ``cashFlow``.
    """
    moved = change if change != 0 else cash_flow
    if log_type in TRANSFERS_IN:
        return abs(moved)
    if log_type in TRANSFERS_OUT:
        return -abs(moved)
    if log_type in TRANSFERS_SIGNED:
        return moved
    return ZERO


def transfer_value(*, amount: Decimal, currency: str, prices: dict[str, Decimal]) -> Decimal | None:
    """A signed coin amount in USDT at the wallet's USD price of the coin (USDT and USDC at 1 when
    the wallet shows none), to four decimals half-even; None when the coin has no price."""
    price = prices.get(currency)
    if price is None and currency in STABLECOINS:
        price = ONE
    if price is None:
        return None
    return money(amount * price)


def transfers_net(values: list[tuple[int, Decimal]], *, until_ms: int) -> Decimal:
    """The sum of ``(time_ms, value)`` transfers made at or before ``until_ms``: what an equity read
    at ``until_ms`` already shows (a later transfer is not in it yet)."""
    return sum((value for time_ms, value in values if time_ms <= until_ms), ZERO)


def day_outcome(*, pnl_pct: Decimal, target_pct: Decimal, stop_pct: Decimal) -> DayOutcome:
    """Target hit at ``pnl_pct >= +target_pct``, stop hit at ``pnl_pct <= -stop_pct`` (both inclusive)."""
    if pnl_pct >= target_pct:
        return DayOutcome.TARGET_HIT
    if pnl_pct <= -stop_pct:
        return DayOutcome.STOP_HIT
    return DayOutcome.OPEN


def utc_date(now: datetime) -> date:
    """The UTC calendar day of an aware time."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return now.astimezone(UTC).date()


def day_start(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s UTC day."""
    return datetime.combine(utc_date(now), time(0), tzinfo=UTC)


def next_utc_midnight(now: datetime) -> datetime:
    """The first 00:00 UTC strictly after ``now`` (at exactly midnight: the next one)."""
    return day_start(now) + timedelta(days=1)


# -- initial margin ---------------------------------------------------------------


class ImAction(enum.StrEnum):
    NONE = "none"
    WARN = "warn"
    REDUCE = "reduce"


def im_action(*, im_pct: Decimal, warn_pct: Decimal, reduce_pct: Decimal) -> ImAction:
    """``reduce`` at ``im_pct >= reduce_pct``, else ``warn`` at ``im_pct >= warn_pct``, else ``none``."""
    if im_pct >= reduce_pct:
        return ImAction.REDUCE
    if im_pct >= warn_pct:
        return ImAction.WARN
    return ImAction.NONE


def reduce_qty(*, size: Decimal, fraction: Decimal, qty_step: Decimal, min_order_qty: Decimal) -> Decimal:
    """How much of a position of ``size`` one IM reduction closes.

    ``size * fraction`` rounded DOWN to ``qty_step`` (never more than asked). When
    that is below ``min_order_qty`` no order that small exists, so the whole
    position is closed instead and ``size`` itself is returned: a position too small
    to cut by a fraction is closed rather than left untouched, because the reduction
    exists to bring the margin down. A result equal to ``size`` means "close it all".
    """
    if size <= 0:
        raise ValueError(f"position size must be positive, got {size}")
    if not ZERO < fraction <= ONE:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    qty = round_qty(size * fraction, qty_step)
    if qty < min_order_qty or qty <= 0 or qty >= size:
        return size
    return qty


# -- TP/SL ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TpSl:
    """Trigger prices for a whole position. ``take_profit`` is None when it would be <= 0 (a short's
    take-profit at 100 % or more, which Bybit would read as "no TP")."""

    take_profit: Decimal | None
    stop_loss: Decimal


def tpsl_prices(
    *,
    position_side: Side,
    avg_price: Decimal,
    take_profit_pct: Decimal,
    stop_loss_pct: Decimal,
    tick_size: Decimal,
) -> TpSl:
    """TP/SL for a position from its average entry price and the coin's percentages.

    Long: TP ``avg * (1 + tp%)``, SL ``avg * (1 - sl%)``; short: the reverse.
    Rounded to the tick toward the market (``round_take_profit``/``round_stop_loss``:
    a long's TP down and SL up, a short's TP up and SL down), as the engine rounds
    the TP/SL it sends with an entry.
    """
    side = Side(position_side)
    if avg_price <= 0:
        raise ValueError(f"average price must be positive, got {avg_price}")
    tp_move = take_profit_pct / HUNDRED
    sl_move = stop_loss_pct / HUNDRED
    if side is Side.BUY:
        take_profit = avg_price * (ONE + tp_move)
        stop_loss = avg_price * (ONE - sl_move)
    else:
        take_profit = max(avg_price * (ONE - tp_move), ZERO)
        stop_loss = avg_price * (ONE + sl_move)
    take_profit = round_take_profit(take_profit, tick_size, position_side=side)
    stop_loss = round_stop_loss(stop_loss, tick_size, position_side=side)
    return TpSl(take_profit=take_profit if take_profit > 0 else None, stop_loss=stop_loss)


def _off(current: Decimal | None, wanted: Decimal | None, tick_size: Decimal) -> bool:
    if wanted is None:
        return False  # nothing to enforce (no valid TP exists for this position)
    if current is None:
        return True
    return abs(current - wanted) > tick_size


def tpsl_needs_setting(
    *, take_profit: Decimal | None, stop_loss: Decimal | None, wanted: TpSl, tick_size: Decimal
) -> bool:
    """Whether a position showing ``take_profit``/``stop_loss`` (None = not set) needs ``wanted`` set.

    Yes when a leg is missing or off by more than one tick; one tick of difference
    is tolerated so another rounding of the same level (the engine's, made from the
    decision price) is not rewritten on every pass.
    """
    return _off(take_profit, wanted.take_profit, tick_size) or _off(stop_loss, wanted.stop_loss, tick_size)


def tpsl_crossed(*, position_side: Side, wanted: TpSl, last_price: Decimal) -> str | None:
    """Which level the market has already reached: ``"stop_loss"``, ``"take_profit"`` or None.

    Bybit refuses a TP or SL on the wrong side of the last price (a long's TP must be
    above it, its SL below), so a level the price has already passed cannot be set;
    the position is where that TP/SL would have closed it. The stop is named first.
    """
    side = Side(position_side)
    tp, sl = wanted.take_profit, wanted.stop_loss
    if side is Side.BUY:
        if sl >= last_price:
            return "stop_loss"
        if tp is not None and tp <= last_price:
            return "take_profit"
    else:
        if sl <= last_price:
            return "stop_loss"
        if tp is not None and tp >= last_price:
            return "take_profit"
    return None


# -- realised PnL per strategy (risk.closed_pnl) ------------------------------------------

# The same words as risk.models.ClosedPnl.Strategy (and the dashboard's owners).
WL, PM, MANUAL = "WL", "PM", "manual"
PNL_STRATEGIES = (WL, PM, MANUAL)
# Our orderLinkId prefixes that name a position's owner (risk- and panic- closes do not:
# they close someone else's position).
OWNER_PREFIXES = {"wl": WL, "pm": PM}
# The journal's entry actions per side: the engine opens either way, the portfolio
# (enter, add) only buys.
ENTRY_ACTIONS = {"long": ("open_long", "enter", "add"), "short": ("open_short",)}
FEE_PLACES = Decimal("0.00000001")  # ClosedPnl stores eight decimal places


def closed_side(closing_side: Side) -> str:
    """The side of the position a closing order closed: a Sell closes a long."""
    return "short" if closing_side is Side.BUY else "long"


def close_fee_share(*, order_fee: Decimal, order_qty: Decimal, closed_qty: Decimal) -> Decimal:
    """The closing order's fee for the quantity it closed (all of it unless the order also
    opened the other way), to eight places."""
    if order_qty <= 0:
        return ZERO
    if closed_qty >= order_qty:
        return order_fee
    return (order_fee * closed_qty / order_qty).quantize(FEE_PLACES, ROUND_HALF_EVEN)


def open_fee_of(
    *, side: str, entry_value: Decimal, exit_value: Decimal, closed_pnl: Decimal, close_fee: Decimal
) -> Decimal:
    """What Bybit netted out of closedPnl besides the close fee: the entry's fee share
    (and any funding). Gross = exit - entry value for a long, entry - exit for a short."""
    gross = exit_value - entry_value if side == "long" else entry_value - exit_value
    return gross - closed_pnl - close_fee


def closed_pnl_strategy(*, closing_link_id: str, journal_owner: str | None) -> str:
    """Who realised a close: the closing order's own wl-/pm- prefix; otherwise (Bybit's TP/SL
    with no orderLinkId, a risk- or panic- close, a close by hand) the owner of the position
    as the journal has it; else manual."""
    prefix = strategy_of(closing_link_id)
    if prefix in OWNER_PREFIXES:
        return OWNER_PREFIXES[prefix]
    return journal_owner or MANUAL


@dataclass(frozen=True, slots=True)
class PnlSum:
    """Realised PnL (net of fees), the fees in it, and how many closes, in USDT."""

    pnl: Decimal = ZERO
    fees: Decimal = ZERO
    closes: int = 0

    def plus(self, *, pnl: Decimal, fees: Decimal) -> PnlSum:
        return PnlSum(pnl=self.pnl + pnl, fees=self.fees + fees, closes=self.closes + 1)


def pnl_sums_by_day(
    closes: list[tuple[date, str, Decimal, Decimal]], *, days: list[date]
) -> dict[date, dict[str, PnlSum]]:
    """``(day, strategy, pnl, fees)`` rows summed per day and strategy; every day in ``days``
    and every strategy of ``PNL_STRATEGIES`` present (zero when nothing closed)."""
    sums = {day: dict.fromkeys(PNL_STRATEGIES, PnlSum()) for day in days}
    for day, strategy, pnl, fees in closes:
        if day in sums and strategy in sums[day]:
            sums[day][strategy] = sums[day][strategy].plus(pnl=pnl, fees=fees)
    return sums


def pnl_sums_total(by_day: dict[date, dict[str, PnlSum]], *, since: date) -> dict[str, PnlSum]:
    """Per strategy, the sum of the days from ``since`` on."""
    totals = dict.fromkeys(PNL_STRATEGIES, PnlSum())
    for day, sums in by_day.items():
        if day < since:
            continue
        for strategy, part in sums.items():
            total = totals[strategy]
            totals[strategy] = PnlSum(
                pnl=total.pnl + part.pnl, fees=total.fees + part.fees, closes=total.closes + part.closes
            )
    return totals


# -- the risk watch's equity estimate ------------------------------------------------


def equity_estimate(*, base: Decimal, positions: Iterable[tuple[Decimal, Decimal, Decimal]]) -> Decimal:
    """The account's equity at the current marks, as Bybit sums it: ``base`` (the wallet's
    ``totalEquity`` less ``totalPerpUPL``) plus each position's unrealised PnL, ``signed size x
    (mark - entry)`` for each ``(signed_size, entry_price, mark_price)`` (longs positive)."""
    return base + sum((size * (mark - entry) for size, entry, mark in positions), ZERO)


def im_pct_estimate(
    *, initial_margin: Decimal, margin_base: Decimal, positions: Iterable[tuple[Decimal, Decimal, Decimal]]
) -> Decimal:
    """Bybit's ``accountIMRate`` in percent at the current marks: ``initial_margin`` over the
    margin balance (``margin_base``, the balance without the perps' unrealised PnL, plus each
    position's). No positive balance with margin in use is an infinite rate."""
    balance = equity_estimate(base=margin_base, positions=positions)
    if balance <= 0:
        return ZERO if initial_margin == 0 else Decimal("Infinity")
    return initial_margin / balance * HUNDRED


# -- positions nobody of ours opened ------------------------------------------------


class UnknownAction(enum.StrEnum):
    ADOPT = "adopt"  # the TP/SL upkeep protects it as its coin asks
    FLATTEN = "flatten"
    REPORT = "report"  # journal and alert only


def unknown_position_action(*, policy: str, configured: bool) -> UnknownAction:
    """What becomes of a position nobody of ours opened, under ``RiskSettings.unknown_positions``:
    ``adopt`` protects it only when its coin is configured (the TP/SL comes from the coin) and
    reports it otherwise; ``flatten`` closes it; ``report`` leaves it alone."""
    if policy == UnknownAction.FLATTEN:
        return UnknownAction.FLATTEN
    if policy == UnknownAction.ADOPT and configured:
        return UnknownAction.ADOPT
    return UnknownAction.REPORT
