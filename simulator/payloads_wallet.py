"""Bybit V5 answer shapes of the wallet: ``wallet-balance`` (REST and the ``wallet`` stream)
and ``transaction-log`` rows, key for key as Bybit's documented examples (tests/resources/bybit/).

Cross margin as Bybit defines it (docs/v5/account/wallet-balance.mdx and the UTA glossary):
``totalEquity`` = every coin at its USD value, no haircut; ``totalWalletBalance`` = the
wallet balances in USD after each coin's collateral value ratio; ``totalMarginBalance`` =
``totalWalletBalance`` + ``totalPerpUPL``; ``accountIMRate`` = ``totalInitialMargin`` /
``totalMarginBalance`` (no spot orders here, so no haircut or order loss to add).
"""

from .instruments import Instrument
from .numbers import fixed, money, plain, rate
from .state import SETTLE_COIN, TRADE, Collateral, LogEntry, WalletTotals


def _coin_row(
    coin: str,
    *,
    equity,
    usd_value,
    wallet,
    order_im="0",
    position_im="0",
    position_mm="0",
    unrealised="0",
    cum_realised="0",
) -> dict:
    return {
        "coin": coin,
        "equity": equity,
        "usdValue": usd_value,
        "walletBalance": wallet,
        "availableToWithdraw": "",
        "availableToBorrow": "",
        "borrowAmount": "0",
        "accruedInterest": "0",
        "totalOrderIM": order_im,
        "totalPositionIM": position_im,
        "totalPositionMM": position_mm,
        "unrealisedPnl": unrealised,
        "cumRealisedPnl": cum_realised,
        "bonus": "0",
        "collateralSwitch": True,
        "marginCollateral": True,
        "locked": "0",
        "spotHedgingQty": "0",
        "spotBorrow": "0",
    }


def _collateral_row(holding: Collateral) -> dict:
    amount = money(holding.amount)
    return _coin_row(holding.coin, equity=amount, usd_value=money(holding.usd_value), wallet=amount)


def wallet_row(totals: WalletTotals) -> dict:
    usdt = _coin_row(
        SETTLE_COIN,
        equity=money(totals.usdt_equity),
        usd_value=money(totals.usdt_equity),  # the simulator prices USDT at 1 USD
        wallet=money(totals.wallet_balance),
        order_im=money(totals.order_im),
        position_im=money(totals.position_im),
        position_mm=money(totals.maintenance),
        unrealised=money(totals.unrealised),
        cum_realised=money(totals.cum_realised),
    )
    coins = [usdt, *(_collateral_row(holding) for holding in totals.collateral if holding.amount)]
    return {
        "accountType": "UNIFIED",
        "accountLTV": "0",
        "accountIMRate": rate(totals.im_rate),
        "accountIMRateByMp": rate(totals.im_rate),
        "accountMMRate": rate(totals.mm_rate),
        "accountMMRateByMp": rate(totals.mm_rate),
        "totalEquity": money(totals.total_equity),
        "totalWalletBalance": money(totals.total_wallet_balance),
        "totalMarginBalance": money(totals.margin_balance),
        "totalAvailableBalance": money(totals.available),
        "totalPerpUPL": money(totals.unrealised),
        "totalInitialMargin": money(totals.initial_margin),
        "totalInitialMarginByMp": money(totals.initial_margin),
        "totalMaintenanceMargin": money(totals.maintenance),
        "totalMaintenanceMarginByMp": money(totals.maintenance),
        "coin": coins,
    }


def transaction_log_row(entry: LogEntry, inst: Instrument | None) -> dict:
    """A row of ``/v5/account/transaction-log``; a transfer has no symbol, price or fee rate."""
    trade = entry.type == TRADE and inst is not None
    return {
        "transSubType": "",
        "id": entry.entry_id,
        "symbol": entry.symbol,
        "side": entry.side,
        "funding": "",
        "orderLinkId": entry.order_link_id,
        "orderId": entry.order_id,
        "fee": money(entry.fee),
        "change": money(entry.change),
        "cashFlow": money(entry.cash_flow),
        "transactionTime": str(entry.time_ms),
        "type": entry.type,
        "feeRate": plain(entry.fee_rate) if entry.fee_rate is not None else "",
        "bonusChange": "",
        "size": fixed(entry.size, inst.qty_step) if trade else "0",
        "qty": fixed(entry.qty, inst.qty_step) if trade else money(entry.qty),
        "cashBalance": money(entry.cash_balance),
        "currency": entry.currency,
        "category": entry.category,
        "tradePrice": fixed(entry.trade_price, inst.tick_size) if trade else "",
        "tradeId": entry.trade_id,
        "extraFees": "",
    }
