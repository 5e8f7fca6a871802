"""The account between two REST reads, as its streams tell it: what the risk watch estimates
the equity from. Plain state, no I/O; the watch feeds it stream rows and mark prices.

- a ``wallet`` row (UNIFIED) gives ``base`` = ``totalEquity - totalPerpUPL`` (the equity
  without the perps' unrealised PnL: it moves only with fills, fees, funding and transfers,
  each of which pushes a new wallet row) and Bybit's IM rate;
- a ``position`` row gives the position's signed size and entry price (the stream calls it
  ``entryPrice``, REST ``avgPrice``), and a mark price until the ticker brings a newer one;
- a mark price from ``tickers.{symbol}`` replaces the symbol's mark.

The estimate is Bybit's own sum (``risk.rules.equity_estimate``). Between a fill's position row
and its wallet row it is off by the fill's realised PnL for a moment; the watch only uses it
to decide *when* to ask the exchange, never to act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from risk.rules import equity_estimate, im_pct_estimate
from trading.bybit import Position, Wallet
from trading.bybit.parsing import decimal_or_none, parse_position, parse_wallet
from trading.rules import Side


@dataclass
class AccountMarks:
    base: Decimal | None = None  # wallet totalEquity - totalPerpUPL at the last wallet row
    equity: Decimal | None = None  # the last wallet row's totalEquity (Bybit's own figure)
    im_pct: Decimal | None = None  # the last wallet row's IM rate, in percent
    initial_margin: Decimal | None = None  # the last wallet row's totalInitialMargin
    margin_base: Decimal | None = None  # its totalMarginBalance - totalPerpUPL
    # (symbol, positionIdx) -> (signed size: longs positive, entry price)
    positions: dict[tuple[str, int], tuple[Decimal, Decimal]] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)  # symbol -> mark price

    def apply_wallet(self, rows: list[dict[str, Any]]) -> bool:
        """True when a UNIFIED account row was applied."""
        applied = False
        for row in rows:
            if row.get("accountType", "UNIFIED") != "UNIFIED":
                continue
            self._take_wallet(parse_wallet(row))
            applied = True
        return applied

    def reset(self, *, wallet: Wallet, positions: list[Position]) -> None:
        """Start again from a REST read (at start, and after a stream reconnects)."""
        self._take_wallet(wallet)
        self.positions = {}
        for position in positions:
            self._take_position(position, entry=position.avg_price)
            if position.mark_price:
                self.marks[position.symbol] = position.mark_price

    def _take_wallet(self, wallet: Wallet) -> None:
        self.base = wallet.total_equity - (wallet.total_perp_upl or 0)
        self.equity = wallet.total_equity
        self.im_pct = wallet.im_pct
        self.initial_margin = wallet.total_initial_margin
        margin_balance = (
            wallet.total_equity if wallet.total_margin_balance is None else wallet.total_margin_balance
        )
        self.margin_base = margin_balance - (wallet.total_perp_upl or 0)

    def apply_positions(self, rows: list[dict[str, Any]]) -> None:
        """Rows of the private ``position`` stream, through the gateway's own parser (a bad row
        is its ``MalformedAnswer``); a flat row, or one without an entry price, ends the leg."""
        for row in rows:
            symbol = row.get("symbol")
            if not isinstance(symbol, str) or not symbol:
                continue
            position = parse_position(row)
            if position is None:
                self.positions.pop((symbol, int(row.get("positionIdx") or 0)), None)
                continue
            entry = decimal_or_none(row.get("entryPrice"), "entryPrice") or position.avg_price
            self._take_position(position, entry=entry)
            if position.mark_price and symbol not in self.marks:
                self.marks[symbol] = position.mark_price

    def _take_position(self, position: Position, *, entry: Decimal | None) -> None:
        key = (position.symbol, position.position_idx)
        if not entry:
            self.positions.pop(key, None)
            return
        self.positions[key] = (position.size if position.side is Side.BUY else -position.size, entry)

    def apply_mark(self, symbol: str, mark: Decimal) -> None:
        self.marks[symbol] = mark

    def symbols(self) -> frozenset[str]:
        return frozenset(symbol for symbol, _idx in self.positions)

    def _legs(self) -> list[tuple[Decimal, Decimal, Decimal]] | None:
        legs = []
        for (symbol, _idx), (size, entry) in self.positions.items():
            mark = self.marks.get(symbol)
            if mark is None:
                return None
            legs.append((size, entry, mark))
        return legs

    def equity_estimate(self) -> Decimal | None:
        """The equity at the latest marks; None until a wallet row came, or while a held
        symbol has no mark yet."""
        legs = self._legs()
        if self.base is None or legs is None:
            return None
        return equity_estimate(base=self.base, positions=legs)

    def im_pct_estimate(self) -> Decimal | None:
        """Bybit's IM rate at the latest marks: the wallet's initial margin over its margin
        balance moved by the perps' unrealised PnL (the initial margin itself is taken as it
        was: it moves with the mark far less than the balance does)."""
        legs = self._legs()
        if self.margin_base is None or self.initial_margin is None or legs is None:
            return None
        return im_pct_estimate(
            initial_margin=self.initial_margin, margin_base=self.margin_base, positions=legs
        )
