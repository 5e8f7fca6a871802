"""Bybit V5 answer shapes: the one place where state becomes Bybit's JSON.

Key for key as in Bybit's documented examples (tests/resources/bybit/): strings
where Bybit sends strings, JSON integers and booleans where it sends those. Prices
and quantities carry the instrument's decimals, money values up to 8 decimals.
"""

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from . import rules
from .exchange import Exchange
from .instruments import Instrument
from .market import MINUTE_MS, Candle, Market, Trade
from .numbers import ZERO, fixed, money, plain
from .state import OPEN_STATUSES, ClosedPnl, Execution, Order, Position

HOUR_MS = 3_600_000
FUNDING_INTERVAL_MS = 8 * HOUR_MS


def instrument_row(inst: Instrument) -> dict:
    return {
        "symbol": inst.symbol,
        "symbolId": inst.symbol_id,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": inst.base_coin,
        "quoteCoin": "USDT",
        "launchTime": str(inst.launch_time_ms),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(inst.price_scale),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": str(inst.max_leverage),
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": str(inst.tick_size),
            "maxPrice": fixed(inst.tick_size * 19999998, inst.tick_size),
            "tickSize": str(inst.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": str(inst.max_qty),
            "minOrderQty": str(inst.min_qty),
            "qtyStep": str(inst.qty_step),
            "postOnlyMaxOrderQty": str(inst.max_qty),
            "maxMktOrderQty": str(inst.max_market_qty),
            "minNotionalValue": plain(inst.min_notional),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": "USDT",
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": "",
    }


def next_funding_ms(now_ms: int) -> int:
    return now_ms - now_ms % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS


def ticker_row(exchange: Exchange, symbol: str, now_ms: int) -> dict:
    """`/v5/market/tickers` item; mark and index price equal the last price in the simulator."""
    market = exchange.market
    inst = market.instruments[symbol]
    book = market.symbols[symbol]
    tick = inst.tick_size
    last = book.last
    stats = market.day_stats(symbol, now_ms)
    bid = rules.taker_price(rules.SELL, last, exchange.config.slippage, tick)
    ask = rules.taker_price(rules.BUY, last, exchange.config.slippage, tick)
    prev_24h = stats.prev_price_24h or last
    change = (last - prev_24h) / prev_24h if prev_24h else ZERO
    # A steady synthetic open interest: half a day's volume.
    open_interest = (stats.volume / 2).quantize(inst.qty_step)
    depth = str(inst.max_market_qty)
    return {
        "symbol": symbol,
        "lastPrice": fixed(last, tick),
        "indexPrice": fixed(last, tick),
        "markPrice": fixed(last, tick),
        "prevPrice24h": fixed(prev_24h, tick),
        "price24hPcnt": plain(change.quantize(Decimal("0.000001"))),
        "highPrice24h": fixed(stats.high or last, tick),
        "lowPrice24h": fixed(stats.low or last, tick),
        "prevPrice1h": fixed(stats.prev_price_1h or last, tick),
        "openInterest": plain(open_interest),
        "openInterestValue": money(open_interest * last),
        "turnover24h": money(stats.turnover),
        "volume24h": plain(stats.volume),
        "fundingRate": "0.0001",
        "nextFundingTime": str(next_funding_ms(now_ms)),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "ask1Size": depth,
        "bid1Price": fixed(bid, tick),
        "ask1Price": fixed(ask, tick),
        "bid1Size": depth,
        "basis": "",
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
        "fundingIntervalHour": "8",
        "basisRateYear": "",
        "fundingCap": "0.005",
    }


def ws_ticker_row(exchange: Exchange, symbol: str, now_ms: int) -> dict:
    row = ticker_row(exchange, symbol, now_ms)
    row["tickDirection"] = exchange.market.symbols[symbol].tick_direction
    return row


def kline_row(candle: Candle, inst: Instrument) -> list[str]:
    tick = inst.tick_size
    return [
        str(candle.start),
        fixed(candle.open, tick),
        fixed(candle.high, tick),
        fixed(candle.low, tick),
        fixed(candle.close, tick),
        plain(candle.volume),
        money(candle.turnover),
    ]


def ws_kline_row(candle: Candle, inst: Instrument, now_ms: int) -> dict:
    tick = inst.tick_size
    end = candle.start + MINUTE_MS - 1
    return {
        "start": candle.start,
        "end": end,
        "interval": "1",
        "open": fixed(candle.open, tick),
        "close": fixed(candle.close, tick),
        "high": fixed(candle.high, tick),
        "low": fixed(candle.low, tick),
        "volume": plain(candle.volume),
        "turnover": money(candle.turnover),
        "confirm": now_ms > end,
        "timestamp": candle.last_trade_ms or now_ms,
    }


def trade_row(trade: Trade, inst: Instrument) -> dict:
    return {
        "execId": trade.trade_id,
        "symbol": trade.symbol,
        "price": fixed(trade.price, inst.tick_size),
        "size": plain(trade.size),
        "side": trade.side,
        "time": str(trade.time_ms),
        "isBlockTrade": False,
        "isRPITrade": False,
        "seq": str(trade.seq),
    }


def ws_trade_row(trade: Trade, inst: Instrument) -> dict:
    return {
        "T": trade.time_ms,
        "s": trade.symbol,
        "S": trade.side,
        "v": plain(trade.size),
        "p": fixed(trade.price, inst.tick_size),
        "L": trade.tick_direction,
        "i": trade.trade_id,
        "BT": False,
        "RPI": False,
        "seq": trade.seq,
    }


def _price(value: Decimal, inst: Instrument) -> str:
    return fixed(value, inst.tick_size) if value else "0"


def order_row(order: Order, inst: Instrument | None) -> dict:
    """One order as `/v5/order/realtime`, `/v5/order/history` and the `order` stream show it."""
    tick = inst.tick_size if inst else Decimal("0.01")
    step = inst.qty_step if inst else Decimal("0.001")
    qty = order.qty if not (order.follows_position and order.status in OPEN_STATUSES) else ZERO
    leaves = order.leaves_qty if not order.follows_position else ZERO
    price = order.price
    return {
        "orderId": order.order_id,
        "orderLinkId": order.order_link_id,
        "parentOrderLinkId": "",
        "blockTradeId": "",
        "symbol": order.symbol,
        "price": fixed(price, tick) if price else "0",
        "qty": fixed(qty, step),
        "side": order.side,
        "isLeverage": "",
        "positionIdx": order.position_idx,
        "orderStatus": order.status,
        "createType": order.create_type,
        "cancelType": order.cancel_type,
        "rejectReason": order.reject_reason,
        "avgPrice": fixed(order.avg_price, tick) if order.cum_qty else "0",
        "leavesQty": fixed(leaves, step),
        "leavesValue": money(leaves * price) if price else "0",
        "cumExecQty": fixed(order.cum_qty, step),
        "cumExecValue": money(order.cum_value),
        "cumExecFee": money(order.cum_fee),
        "closedPnl": money(order.closed_pnl),
        "timeInForce": order.time_in_force,
        "orderType": order.order_type,
        "stopOrderType": order.stop_order_type or "UNKNOWN",
        "orderIv": "",
        "marketUnit": "",
        "triggerPrice": fixed(order.trigger_price, tick) if order.trigger_price else "0.00",
        "takeProfit": fixed(order.take_profit, tick) if order.take_profit else "0.00",
        "stopLoss": fixed(order.stop_loss, tick) if order.stop_loss else "0.00",
        "tpTriggerBy": order.tp_trigger_by or "UNKNOWN",
        "slTriggerBy": order.sl_trigger_by or "UNKNOWN",
        "triggerDirection": order.trigger_direction,
        "triggerBy": order.trigger_by or "UNKNOWN",
        "lastPriceOnCreated": fixed(order.last_price_on_created, tick) if order.last_price_on_created else "",
        "basePrice": "",
        "reduceOnly": order.reduce_only,
        "closeOnTrigger": order.close_on_trigger,
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "tpslMode": order.tpsl_mode,
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "placeType": "",
        "slippageToleranceType": "UNKNOWN",
        "slippageTolerance": "",
        "createdTime": str(order.created_ms),
        "updatedTime": str(order.updated_ms),
        "extraFees": "",
        "feeCurrency": "USDT",
        "cumFeeDetail": {"USDT": money(order.cum_fee)} if order.cum_fee else {},
        "rpiTakerAccess": False,
        "rpiMatchedQty": "0",
        "category": "linear",
    }


def position_row(exchange: Exchange, position: Position) -> dict:
    """A position as `/v5/position/list` shows it (also the base of the stream's row)."""
    inst = exchange.instruments[position.symbol]
    tick = inst.tick_size
    mark = exchange.market.last(position.symbol)
    leverage = exchange.leverage(position.symbol)
    size = abs(position.size)
    value = position.value
    flat = position.size == 0
    im = value / leverage
    mm = value * inst.maintenance_rate
    upl = rules.unrealised_pnl(position.size, position.avg_price, mark)
    if flat:
        liq = bust = break_even = ""
    else:
        liq = fixed(
            max(
                ZERO,
                rules.estimated_liquidation_price(
                    position.size, position.avg_price, leverage, inst.maintenance_rate
                ),
            ),
            tick,
        )
        bust = fixed(rules.bankruptcy_price(position.size, position.avg_price, leverage), tick)
        fee = exchange.config.taker_fee
        direction = 1 if position.size > 0 else -1
        break_even = plain((position.avg_price * (1 + direction * 2 * fee)).quantize(Decimal("0.00000001")))
    return {
        "positionIdx": position.position_idx,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": position.symbol,
        "side": position.side,
        "size": fixed(size, inst.qty_step),
        "avgPrice": plain(position.avg_price.quantize(Decimal("0.00000001"))) if not flat else "0",
        "positionValue": money(value),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 0 if flat else 2,
        "leverage": plain(leverage),
        "breakEvenPrice": break_even,
        "positionBalance": money(im),
        "markPrice": fixed(mark, tick),
        "liqPrice": liq,
        "bustPrice": bust,
        "positionMM": money(mm),
        "positionMMByMp": money(mm),
        "positionIM": money(im),
        "positionIMByMp": money(im),
        "tpslMode": "Full",
        "takeProfit": _price(position.take_profit, inst),
        "stopLoss": _price(position.stop_loss, inst),
        "trailingStop": _price(position.trailing_stop, inst),
        "unrealisedPnl": money(upl),
        "curRealisedPnl": money(position.cur_realised),
        "cumRealisedPnl": money(position.cum_realised),
        "seq": position.seq,
        "isReduceOnly": False,
        "mmrSysUpdateTime": "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": str(position.created_ms),
        "updatedTime": str(position.updated_ms),
    }


def ws_position_row(exchange: Exchange, position: Position) -> dict:
    row = position_row(exchange, position)
    # The stream names the entry price entryPrice (REST: avgPrice) and spells mmrSysUpdatedTime.
    row["entryPrice"] = row["avgPrice"]
    row["category"] = "linear"
    row["mmrSysUpdatedTime"] = ""
    return row


def execution_row(execution: Execution, inst: Instrument) -> dict:
    order = execution.order
    tick = inst.tick_size
    step = inst.qty_step
    return {
        "symbol": execution.symbol,
        "orderType": order.order_type,
        "underlyingPrice": "",
        "orderLinkId": order.order_link_id,
        "side": execution.side,
        "indexPrice": "",
        "orderId": order.order_id,
        "stopOrderType": order.stop_order_type or "UNKNOWN",
        "leavesQty": fixed(execution.leaves_qty, step),
        "execTime": str(execution.time_ms),
        "feeCurrency": "USDT",
        "isMaker": execution.is_maker,
        "execFee": money(execution.fee),
        "feeRate": plain(execution.fee_rate),
        "execId": execution.exec_id,
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": fixed(execution.mark_price, tick),
        "execPrice": fixed(execution.price, tick),
        "markIv": "",
        "orderQty": fixed(order.qty, step),
        "orderPrice": fixed(order.price, tick) if order.price else "0",
        "execValue": money(execution.price * execution.qty),
        "execType": "Trade",
        "execQty": fixed(execution.qty, step),
        "closedSize": fixed(execution.closed_size, step),
        "extraFees": "",
        "seq": execution.seq,
    }


def ws_execution_row(execution: Execution, inst: Instrument) -> dict:
    row = execution_row(execution, inst)
    row.update(
        {
            "category": "linear",
            "execPnl": money(execution.exec_pnl),
            "createType": execution.order.create_type,
            "isLeverage": "0",
            "marketUnit": "",
            # The stream sends extraFees as a list of fee objects (REST: a string). Bybit lists
            # region-specific fees (GST, ...) there; the simulator charges none, so its one
            # entry is a zero fee that keeps the documented shape.
            "extraFees": [{"feeCoin": "USDT", "feeType": "", "subFeeType": "", "feeRate": "0", "fee": "0"}],
        }
    )
    return row


def closed_pnl_row(record: ClosedPnl, inst: Instrument) -> dict:
    step = inst.qty_step
    tick = inst.tick_size
    order = record.order
    return {
        "symbol": record.symbol,
        "orderType": order.order_type,
        "leverage": plain(record.leverage),
        "updatedTime": str(record.time_ms),
        "side": record.side,
        "orderId": order.order_id,
        "closedPnl": money(record.closed_pnl),
        "avgEntryPrice": plain(record.avg_entry.quantize(Decimal("0.00000001"))),
        "qty": fixed(record.qty, step),
        "cumEntryValue": money(record.avg_entry * record.closed_size),
        "createdTime": str(order.created_ms),
        "orderPrice": fixed(order.price, tick) if order.price else "0",
        "closedSize": fixed(record.closed_size, step),
        "avgExitPrice": plain(record.avg_exit.quantize(Decimal("0.00000001"))),
        "execType": "Trade",
        "fillCount": "1",
        "cumExitValue": money(record.avg_exit * record.closed_size),
    }


def state_order(order: Order) -> dict:
    """An order as `/sim/state` lists it, including requests that were refused."""
    return {
        "orderId": order.order_id,
        "orderLinkId": order.order_link_id,
        "symbol": order.symbol,
        "side": order.side,
        "orderType": order.order_type,
        "qty": plain(order.qty),
        "price": plain(order.price),
        "reduceOnly": order.reduce_only,
        "positionIdx": order.position_idx,
        "orderStatus": order.status,
        "createdTime": str(order.created_ms),
        "rejectCode": order.reject_code,
        "receivedNs": order.received_ns,
        "stopOrderType": order.stop_order_type,
        "cumExecQty": plain(order.cum_qty),
        "avgPrice": plain(order.avg_price),
    }


def record_execution(execution: Execution) -> dict:
    """A fill as `/sim/record` lists it: which order (and so which orderLinkId) moved the
    position, by how much and when (wall ms), TP/SL and trailing-stop closes included."""
    order = execution.order
    return {
        "execId": execution.exec_id,
        "orderId": order.order_id,
        "orderLinkId": order.order_link_id,
        "symbol": execution.symbol,
        "side": execution.side,
        "qty": plain(execution.qty),
        "price": plain(execution.price),
        "closedSize": plain(execution.closed_size),
        "reduceOnly": order.reduce_only,
        "stopOrderType": order.stop_order_type,
        "positionIdx": order.position_idx,
        "timeMs": execution.time_ms,
    }


def market_prices(market: Market) -> dict:
    return {symbol: fixed(book.last, book.instrument.tick_size) for symbol, book in market.symbols.items()}


def user_id_for_key(api_key: str) -> int:
    """The simulator account's Bybit UID: stable for an API key (a restart keeps it), and
    different keys are different accounts. Eight or nine digits, like Bybit's."""
    return 10_000_000 + int(hashlib.sha256(api_key.encode()).hexdigest()[:12], 16) % 900_000_000


def api_key_row(api_key: str, created_ms: int) -> dict:
    """GET /v5/user/query-api for the simulator's one key: a read-write, unified key with
    contract trading, bound to no IP (docs/v5/user/apikey-info.mdx)."""
    created = datetime.fromtimestamp(created_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": str(user_id_for_key(api_key) % 100_000_000 + 1),
        "note": "simulator",
        "apiKey": api_key,
        "readOnly": 0,
        "secret": "",
        "permissions": {
            "ContractTrade": ["Order", "Position"],
            "Spot": [],
            "Wallet": ["AccountTransfer"],
            "Options": [],
            "Derivatives": ["DerivativesTrade"],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "NFT": [],
        },
        "ips": ["*"],
        "type": 1,
        "deadlineDay": 90,
        "expiredAt": "",
        "createdAt": created,
        "unified": 0,
        "uta": 1,
        "userID": user_id_for_key(api_key),
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
    }
