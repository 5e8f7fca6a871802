"""The panic receipt as text: its closes and its phase timings (alerts, the command, the
dashboard, Telegram all show the same words). Pure: plain dicts in, strings out."""

from __future__ import annotations

RECEIPT_CLOSE_LINES = 20  # a Telegram message holds 4096 characters
TIMING_NAMES = ("lock", "cancel", "closes", "verification", "total")


def close_text(close: dict) -> str:
    """``BTCUSDT Sell 0.010 @ 96990.3, PnL -0.12`` (price and PnL when the exchange reported them)."""
    text = f"{close['symbol']} {close['side']} {close['qty']}"
    if close.get("avg_price"):
        text += f" @ {close['avg_price']}"
    if close.get("realised_pnl"):
        text += f", PnL {close['realised_pnl']}"
    return text


def timings_text(timings_ms: dict) -> str:
    """``lock 4 ms · cancel 6 ms · closes 2,013 ms · verification 5 ms · total 2,031 ms``."""
    return " · ".join(f"{name} {timings_ms[name]:,.0f} ms" for name in TIMING_NAMES if name in timings_ms)


def receipt_lines(*, closes: list[dict], rounds: int, timings_ms: dict) -> list[str]:
    """The closes (largest exposure first, as they were sent), then the rounds and timings."""
    lines = [f"  {close_text(close)}" for close in closes[:RECEIPT_CLOSE_LINES]]
    if len(closes) > RECEIPT_CLOSE_LINES:
        lines.append(f"  ... and {len(closes) - RECEIPT_CLOSE_LINES} more")
    if timings_ms:
        lines.append(f"{rounds} round{'' if rounds == 1 else 's'}; {timings_text(timings_ms)}.")
    return lines
