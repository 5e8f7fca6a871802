"""Venue payloads -> our types, from Bybit's documented examples (tests/resources/bybit/)."""

import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.resources import bybit_example
from trading.bybit.parsing import (
    im_pct_of,
    parse_api_key_info,
    parse_closed_pnl,
    parse_execution,
    parse_kline,
    parse_order,
    parse_position,
    parse_public_trade,
    parse_ticker,
    parse_transaction_log,
    parse_wallet,
    venue_time_ms,
)
from trading.errors import (
    AuthError,
    BadRequest,
    BelowMinNotional,
    ClockSkewError,
    DuplicateOrderLinkId,
    GatewayError,
    InsufficientBalance,
    IpBanned,
    MalformedAnswer,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderTooSmall,
    ReduceOnlyRejected,
    RetryableError,
    UnknownInstrument,
    error_for_http_status,
    error_for_ret_code,
)
from trading.instruments import Instrument, InstrumentCache, parse_instrument
from trading.rules import Side

D = Decimal


def test_it_parses_an_instrument_row():
    row = bybit_example("market_instruments_info_linear")["result"]["list"][0]
    assert parse_instrument(row) == Instrument(
        symbol="BTCUSDT",
        qty_step=D("0.001"),
        min_order_qty=D("0.001"),
        max_order_qty=D("1190.000"),
        max_market_order_qty=D("500.000"),
        min_notional_value=D("5"),
        tick_size=D("0.10"),
        max_leverage=D("100.00"),
        status="Trading",
    )


def test_empty_strings_in_an_instrument_row_mean_no_limit():
    row = bybit_example("market_instruments_info_linear")["result"]["list"][0]
    row["lotSizeFilter"]["minNotionalValue"] = ""
    row["lotSizeFilter"]["maxMktOrderQty"] = ""
    instrument = parse_instrument(row)
    assert instrument.min_notional_value is None
    assert instrument.max_market_order_qty is None


def test_an_instrument_row_without_a_qty_step_is_refused():
    row = bybit_example("market_instruments_info_linear")["result"]["list"][0]
    row["lotSizeFilter"]["qtyStep"] = ""
    with pytest.raises(MalformedAnswer):
        parse_instrument(row)


def test_the_instrument_cache_loads_once_and_goes_stale_after_a_day():
    row = bybit_example("market_instruments_info_linear")["result"]["list"][0]
    loads = []
    now = [datetime(2025, 1, 27, tzinfo=UTC)]

    def loader():
        loads.append(1)
        return [parse_instrument(row)]

    cache = InstrumentCache(load=loader, clock=lambda: now[0])
    assert cache.is_stale()
    assert cache.get("BTCUSDT").tick_size == D("0.10")
    assert cache.get("BTCUSDT").qty_step == D("0.001")
    assert len(loads) == 1
    assert not cache.is_stale()
    with pytest.raises(UnknownInstrument):
        cache.get("NOPEUSDT")
    now[0] += timedelta(days=1)
    assert cache.is_stale()
    assert cache.refresh_if_stale()
    assert len(loads) == 2
    assert not cache.refresh_if_stale()


def test_it_parses_the_api_key_info_and_names_the_account_by_mode_and_uid():
    info = parse_api_key_info(bybit_example("user_query_api")["result"])
    assert (info.user_id, info.key_id, info.read_only, info.unified) == (53888001, "16651472", False, False)
    assert info.permissions["Wallet"] == ("AccountTransfer",) and info.ips == ("*",)
    assert info.expires_at == datetime(2023, 5, 15, 3, 13, 24, tzinfo=UTC)
    assert (info.account_id("live"), info.account_id("demo")) == ("live:53888001", "demo:53888001")


def test_an_api_key_answer_without_a_uid_is_an_error():
    with pytest.raises(GatewayError):
        parse_api_key_info({"id": "1", "userID": ""})


def test_it_parses_a_unified_wallet_and_its_im_pct():
    wallet = parse_wallet(bybit_example("account_wallet_balance_unified")["result"]["list"][0])
    assert wallet.total_equity == D("3.31216591")
    assert wallet.total_wallet_balance == D("3.00326056")
    assert wallet.total_available_balance == D("3.00326056")
    assert wallet.total_initial_margin == D("0")
    assert wallet.account_im_rate == D("0")
    assert wallet.im_pct == 0
    [btc] = wallet.coins
    assert (btc.coin, btc.equity, btc.usd_value, btc.usd_price) == ("BTC", D("0"), D("0"), None)


def test_the_wallet_streams_coins_give_their_usd_prices():
    wallet = parse_wallet(bybit_example("ws_wallet")["data"][0])
    # 36.70759517 USD for 0.00102964 BTC
    assert wallet.usd_prices() == {"BTC": D("36.70759517") / D("0.00102964")}
    assert wallet.total_equity == D("10262.91335023") and wallet.total_margin_balance == D("9684.46297164")


@pytest.mark.parametrize(
    ("initial_margin", "margin_balance", "im_rate", "expected"),
    [
        # Bybit's accountIMRate wins: IM / margin balance after haircuts, not IM / equity.
        ("800", "1000", "0.8", "80"),
        ("700", "875", "0.8", "80"),
        ("1200", "1000", "1.2", "120"),
        ("10", "0", "1.5", "150"),
        # Without it (""), the same quotient from the totals.
        ("800", "1000", None, "80"),
        ("0", "0", None, "0"),
        ("10", "0", None, "Infinity"),
        ("10", None, None, "Infinity"),
    ],
)
def test_im_pct_is_bybits_account_im_rate(initial_margin, margin_balance, im_rate, expected):
    assert im_pct_of(
        total_initial_margin=D(initial_margin),
        total_margin_balance=None if margin_balance is None else D(margin_balance),
        account_im_rate=None if im_rate is None else D(im_rate),
    ) == D(expected)


def test_im_pct_follows_account_im_rate_where_it_differs_from_im_over_equity():
    # 3300.33 IM on 15978.55 equity is 20.66 %; over the 14778.55 margin balance (a BTC
    # collateral hair-cut by 20 %) it is 22.33 %, the figure Bybit reports.
    account = {
        "totalEquity": "15978.548185",
        "totalMarginBalance": "14778.548185",
        "totalInitialMargin": "3300.33",
        "accountIMRate": "0.2233",
    }
    assert parse_wallet(account).im_pct == D("22.33")


def test_it_parses_a_transaction_log_row():
    first, trade, _ = (
        parse_transaction_log(row) for row in bybit_example("account_transaction_log")["result"]["list"]
    )
    assert (first.entry_id, first.type, first.currency, first.symbol) == (
        "592324_XRPUSDT_161440249321",
        "SETTLEMENT",
        "USDT",
        "XRPUSDT",
    )
    assert first.transaction_time == datetime.fromtimestamp(1672128000, tz=UTC)
    assert (first.funding, first.fee, first.cash_flow, first.change) == (D("-0.003676"), 0, 0, D("-0.003676"))
    assert (trade.side, trade.qty, trade.size, trade.trade_price) == ("Buy", D("88"), D("100"), D("0.3615"))
    assert (trade.fee, trade.fee_rate, trade.cash_balance) == (
        D("0.01908720"),
        D("0.0006"),
        D("5086.56192602"),
    )
    assert trade.funding == 0 and trade.order_link_id == "linear-order"  # funding "" = none


def test_it_parses_a_position_row():
    position = parse_position(bybit_example("position_list")["result"]["list"][0])
    assert position is not None
    assert position.side is Side.SELL and not position.is_long
    assert position.size == D("300")
    assert position.avg_price == D("27464.50441675")
    assert position.liq_price is None  # "" = out of range
    assert position.take_profit is None and position.stop_loss is None  # "0.00" = not set
    assert position.position_idx == 0
    assert position.updated_at == datetime.fromtimestamp(1697673600.012, tz=UTC)


def test_a_flat_position_row_is_no_position():
    row = bybit_example("position_list")["result"]["list"][0]
    row.update(side="", size="0")
    assert parse_position(row) is None


def test_it_parses_an_order_row():
    order = parse_order(bybit_example("order_realtime")["result"]["list"][0])
    assert order.order_link_id == "test-000005"
    assert order.side is Side.BUY
    assert order.price == D("1600.00") and order.qty == D("0.10") and order.leaves_qty == D("0.10")
    assert order.avg_price is None  # "0" before any fill
    assert order.take_profit == D("2500.00") and order.stop_loss == D("1500.00")
    assert order.trigger_price is None
    assert order.is_open and order.position_idx == 1
    assert order.created_at == datetime.fromtimestamp(1684738540.559, tz=UTC)


def test_it_parses_executions_and_closed_pnl():
    execution = parse_execution(bybit_example("execution_list")["result"]["list"][0])
    assert execution.exec_price == D("1190.15") and execution.exec_fee == D("0.071409")
    assert execution.closed_size is None and not execution.is_maker
    closed = parse_closed_pnl(bybit_example("position_closed_pnl")["result"]["list"][0])
    assert closed.closed_pnl == D("-47.4065323") and closed.side is Side.SELL
    assert closed.avg_exit_price == D("1180.59833333")


def test_it_parses_tickers_klines_and_trades():
    ticker = parse_ticker(bybit_example("market_tickers_linear")["result"]["list"][0])
    assert ticker.last_price == D("120635.50") and ticker.bid1_size == D("1063")
    assert ticker.next_funding_time == datetime.fromtimestamp(1760371200, tz=UTC)
    kline = parse_kline(bybit_example("market_kline")["result"]["list"][0])
    assert kline.start == datetime.fromtimestamp(1670608800, tz=UTC)
    assert (kline.open, kline.high, kline.low, kline.close) == (
        D("17071"),
        D("17073"),
        D("17027"),
        D("17055.5"),
    )
    trade = parse_public_trade(bybit_example("market_recent_trade")["result"]["list"][0])
    assert trade.price == D("16618.49") and trade.side is Side.BUY


def test_it_reads_the_server_time_to_the_millisecond():
    assert venue_time_ms(bybit_example("market_time")) == pytest.approx(1688639403423.213947)


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (10000, RetryableError),
        (10001, BadRequest),
        (10002, ClockSkewError),
        (10003, AuthError),
        (10004, AuthError),
        (10005, AuthError),
        (10007, AuthError),
        (10010, AuthError),
        (33004, AuthError),
        (10006, RetryableError),
        (10016, RetryableError),
        (110004, InsufficientBalance),
        (110007, InsufficientBalance),
        (110012, InsufficientBalance),
        (110017, ReduceOnlyRejected),
        (110072, DuplicateOrderLinkId),
        (110094, BelowMinNotional),
        (110009, OrderRejected),
        (12345, GatewayError),
    ],
)
def test_ret_codes_map_to_our_errors(code, error_class):
    error = error_for_ret_code(code, "venue text")
    assert type(error) is error_class
    assert error.code == code and "venue text" in str(error)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (403, IpBanned),
        (429, RetryableError),
        (500, RetryableError),
        (503, RetryableError),
        (404, GatewayError),
    ],
)
def test_http_statuses_map_to_our_errors(status, error_class):
    assert type(error_for_http_status(status)) is error_class


def test_errors_survive_pickling_for_celery():
    for error in (
        RetryableError(10006, "Too many visits!", retry_at_ms=5),
        OrderOutcomeUnknown("lost", order_link_id="wl-entry-BTC-0123456789abcdef"),
        OrderTooSmall("below_min_qty"),
        UnknownInstrument("NOPEUSDT"),
        ReduceOnlyRejected(110017, "orderQty will be truncated to zero"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
