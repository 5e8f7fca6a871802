"""The wallet's ledger: transfers in and out, coins other than USDT as collateral, and
``/v5/account/transaction-log`` over what the venue did.

A part of `Exchange` (exchange.py). What Bybit documents and this follows
(bybit-exchange/docs, docs/v5/account/transaction-log.mdx and docs/v5/enum.mdx#typeuta-translog,
snapshot of July 2026):
- request: ``accountType`` (``UNIFIED``), ``category`` (spot, linear, option, inverse),
  ``currency``, ``baseCoin``, ``type``, ``transSubType``, ``startTime``/``endTime`` (ms),
  ``limit`` 1-50 (default 20), ``cursor``. Neither time: the last 24 hours; only one: 24
  hours from (or up to) it; both: at most 7 days apart.
- rows newest first; ``cashFlow`` covers realised PnL and transfers and holds no fee;
  ``change`` = cashFlow + funding - fee; ``cashBalance`` is the coin's balance after it.
- ``TRANSFER_IN``/``TRANSFER_OUT``: assets moved into/out of the unified wallet (a deposit
  reaches the trading account as a transfer in, a withdrawal leaves it as a transfer out).
- rate limit 25/s (docs/v5/rate-limit/rate-limit.mdx).
What the docs leave open and this chooses: a transfer row has no product (``category`` ""),
``side`` "None", and a signed ``cashFlow``/``qty`` (negative out).
"""

import uuid
from decimal import Decimal

from . import params as p
from .errors import PARAMS_ERROR, SimError
from .market import wall_ms
from .numbers import ZERO
from .state import SETTLE_COIN, TRADE, TRANSFER_IN, TRANSFER_OUT, Collateral, Execution, LogEntry, Position

DAY_MS = 86_400_000
CATEGORIES = ("spot", "linear", "option", "inverse")


class Ledger:
    """`Exchange`'s wallet ledger; the state and the other parts it uses live on the same object."""

    def transfer(self, coin: str, amount: Decimal) -> LogEntry:
        """Money moved into (``amount`` > 0) or out of (< 0) the wallet: a deposit or a withdrawal.

        Changes the coin's balance and writes a TRANSFER_IN/TRANSFER_OUT row. A coin other
        than USDT needs a price first (``collateral_set``); more than the balance can't leave.
        """
        if amount == 0:
            raise ValueError("amount must not be zero")
        now = wall_ms()
        if coin == SETTLE_COIN:
            if self.account.wallet_balance + amount < 0:
                raise ValueError(
                    f"cannot withdraw {-amount} USDT: the wallet holds {self.account.wallet_balance}"
                )
            self.account.wallet_balance += amount
            balance = self.account.wallet_balance
        else:
            holding = self.account.collateral.get(coin)
            if holding is None:
                raise ValueError(f"{coin} has no price yet: set it with /sim/collateral first")
            if holding.amount + amount < 0:
                raise ValueError(f"cannot withdraw {-amount} {coin}: the wallet holds {holding.amount}")
            holding.amount += amount
            balance = holding.amount
        entry = LogEntry(
            entry_id=uuid.uuid4().hex,
            time_ms=now,
            type=TRANSFER_IN if amount > 0 else TRANSFER_OUT,
            currency=coin,
            cash_flow=amount,
            cash_balance=balance,
            qty=amount,
        )
        self.account.transaction_log.append(entry)
        self.outbox.append(("wallet", None))
        return entry

    def collateral_set(self, coin: str, usd_price: Decimal, collateral_ratio: Decimal) -> Collateral:
        """A coin's USD price and collateral value ratio (1 - haircut); its amount stays."""
        if coin == SETTLE_COIN:
            raise ValueError("USDT is the settlement coin: its price is 1 and it has no haircut")
        if usd_price <= 0:
            raise ValueError("usdPrice must be positive")
        if not ZERO <= collateral_ratio <= 1:
            raise ValueError("collateralRatio must be within [0, 1]")
        holding = self.account.collateral.get(coin)
        if holding is None:
            holding = self.account.collateral[coin] = Collateral(coin, ZERO, usd_price, collateral_ratio)
        holding.usd_price = usd_price
        holding.collateral_ratio = collateral_ratio
        self.outbox.append(("wallet", None))
        return holding

    def _log_trade(self, execution: Execution, position: Position) -> None:
        """A fill's row: its realised PnL as cash flow, its fee, USDT's balance after it."""
        order = execution.order
        self.account.transaction_log.append(
            LogEntry(
                entry_id=execution.exec_id,
                time_ms=execution.time_ms,
                type=TRADE,
                currency=SETTLE_COIN,
                cash_flow=execution.exec_pnl,
                cash_balance=self.account.wallet_balance,
                fee=execution.fee,
                symbol=execution.symbol,
                category="linear",
                side=execution.side,
                qty=execution.qty,
                size=position.size,
                trade_price=execution.price,
                fee_rate=execution.fee_rate,
                trade_id=execution.exec_id,
                order_id=order.order_id,
                order_link_id=order.order_link_id,
            )
        )

    def transaction_log(self, request: dict) -> list[LogEntry]:
        """`/v5/account/transaction-log`: the rows the request's filters keep, newest first."""
        account_type = p.text(request, "accountType")
        if account_type and account_type != "UNIFIED":
            raise SimError(PARAMS_ERROR, "accountType only support UNIFIED")
        category = p.choice(request, "category", CATEGORIES)
        currency = p.text(request, "currency")
        base_coin = p.text(request, "baseCoin")
        log_type = p.text(request, "type")
        sub_type = p.choice(request, "transSubType", ("movePosition",))
        start, end = _day_range(request)
        rows = []
        for entry in reversed(self.account.transaction_log):
            if not start <= entry.time_ms <= end:
                continue
            if category and entry.category != category:
                continue
            if currency and entry.currency != currency:
                continue
            if base_coin and (not entry.symbol or self.instruments[entry.symbol].base_coin != base_coin):
                continue
            if log_type and entry.type != log_type:
                continue
            if sub_type:
                continue  # no position is ever moved here
            rows.append(entry)
        return rows


def _day_range(request: dict) -> tuple[int, int]:
    """The transaction log's window: 24 hours by default or from one bound, at most 7 days."""
    start = p.integer(request, "startTime", low=0)
    end = p.integer(request, "endTime", low=0)
    if start is None and end is None:
        end = wall_ms()
        return end - DAY_MS, end
    if start is None:
        return end - DAY_MS, end
    if end is None:
        return start, start + DAY_MS
    if end < start:
        raise SimError(PARAMS_ERROR, "params error: endTime must not be before startTime")
    if end - start > 7 * DAY_MS:
        raise SimError(PARAMS_ERROR, "params error: the time range may span at most 7 days")
    return start, end
