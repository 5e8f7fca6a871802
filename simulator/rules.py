"""Pure matching and margin rules of the simulated venue (no I/O, no state).

Everything here works on Decimals and plain values, so each rule can be checked in a
table test. The exchange state machine (`exchange.py`) composes them.
"""

from dataclasses import dataclass
from decimal import Decimal

from .numbers import ONE, ROUND_DOWN, ROUND_UP, ZERO, round_to_step

BUY = "Buy"
SELL = "Sell"


def opposite(side: str) -> str:
    return SELL if side == BUY else BUY


def signed(side: str, qty: Decimal) -> Decimal:
    """A position or fill as one signed number: long/buy positive, short/sell negative."""
    return qty if side == BUY else -qty


def taker_price(side: str, last: Decimal, slippage: Decimal, tick: Decimal) -> Decimal:
    """Where a market order fills: last price moved against the taker by `slippage`.

    Rounded to the tick away from the taker (buys up, sells down), so the slippage
    is never rounded away; at least the last price itself.
    """
    if side == BUY:
        return max(last, round_to_step(last * (ONE + slippage), tick, ROUND_UP))
    return min(last, max(tick, round_to_step(last * (ONE - slippage), tick, ROUND_DOWN)))


def is_marketable(side: str, limit_price: Decimal, bid: Decimal, ask: Decimal) -> bool:
    """A limit order that can trade on arrival: a buy at or above the ask, a sell at or below the bid."""
    return limit_price >= ask if side == BUY else limit_price <= bid


def resting_order_fills(side: str, limit_price: Decimal, last: Decimal) -> bool:
    """A resting limit order fills when the last price reaches it (touch counts)."""
    return last <= limit_price if side == BUY else last >= limit_price


def trigger_hit(direction: int, trigger_price: Decimal, last: Decimal) -> bool:
    """Conditional order trigger: direction 1 fires on a rise to the price, 2 on a fall."""
    return last >= trigger_price if direction == 1 else last <= trigger_price


@dataclass(frozen=True, slots=True)
class FillResult:
    size: Decimal  # signed position size after the fill
    avg_price: Decimal  # entry price of what remains (unchanged on a pure reduce)
    closed_qty: Decimal  # part of the fill that reduced the old position
    realised: Decimal  # gross PnL of the closed part, before fees


def apply_fill(size: Decimal, avg_price: Decimal, side: str, qty: Decimal, price: Decimal) -> FillResult:
    """New position after a fill; a fill larger than an opposite position flips it at `price`."""
    delta = signed(side, qty)
    if size == 0 or (size > 0) == (delta > 0):
        new_size = size + delta
        new_avg = (abs(size) * avg_price + qty * price) / abs(new_size)
        return FillResult(new_size, new_avg, ZERO, ZERO)
    closed = min(qty, abs(size))
    direction = ONE if size > 0 else -ONE
    realised = (price - avg_price) * closed * direction
    new_size = size + delta
    if new_size == 0:
        return FillResult(ZERO, ZERO, closed, realised)
    if (new_size > 0) == (size > 0):
        return FillResult(new_size, avg_price, closed, realised)
    return FillResult(new_size, price, closed, realised)


def unrealised_pnl(size: Decimal, avg_price: Decimal, mark: Decimal) -> Decimal:
    return (mark - avg_price) * size


def estimated_liquidation_price(
    size: Decimal, avg_price: Decimal, leverage: Decimal, maintenance_rate: Decimal
) -> Decimal:
    """Isolated-style estimate: where the position's own margin falls to maintenance.

    Bybit's cross-margin figure depends on the whole account; the simulator shows this
    simpler estimate and documents it.
    """
    if size > 0:
        return avg_price * (ONE - ONE / leverage + maintenance_rate)
    return avg_price * (ONE + ONE / leverage - maintenance_rate)


def bankruptcy_price(size: Decimal, avg_price: Decimal, leverage: Decimal) -> Decimal:
    if size > 0:
        return avg_price * (ONE - ONE / leverage)
    return avg_price * (ONE + ONE / leverage)


def tp_sl_validation_error(
    position_side: str, base_price: Decimal, take_profit: Decimal | None, stop_loss: Decimal | None
) -> str | None:
    """Bybit refuses a take-profit on the wrong side of the current price, and likewise a stop."""
    if position_side == BUY:
        if take_profit and take_profit <= base_price:
            return (
                f"TakeProfit:{take_profit} set for Buy position should be higher than "
                f"base_price:{base_price}??LastPrice"
            )
        if stop_loss and stop_loss >= base_price:
            return (
                f"StopLoss:{stop_loss} set for Buy position should lower than "
                f"base_price:{base_price}??LastPrice"
            )
    else:
        if take_profit and take_profit >= base_price:
            return (
                f"TakeProfit:{take_profit} set for Sell position should be lower than "
                f"base_price:{base_price}??LastPrice"
            )
        if stop_loss and stop_loss <= base_price:
            return (
                f"StopLoss:{stop_loss} set for Sell position should higher than "
                f"base_price:{base_price}??LastPrice"
            )
    return None


def tp_sl_direction(position_side: str, kind: str) -> int:
    """Trigger direction of a position's TP/SL: a long's TP fires on a rise (1), its SL on a fall (2)."""
    rises = (kind == "TakeProfit") == (position_side == BUY)
    return 1 if rises else 2


def opening_qty(position_size: Decimal, side: str, qty: Decimal) -> Decimal:
    """The part of an order that would open or add exposure (what needs initial margin)."""
    delta = signed(side, qty)
    if position_size == 0 or (position_size > 0) == (delta > 0):
        return qty
    return max(ZERO, qty - abs(position_size))
