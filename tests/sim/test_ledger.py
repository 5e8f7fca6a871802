"""The wallet's ledger: deposits and withdrawals, coins as hair-cut collateral, and
/v5/account/transaction-log as Bybit documents it, through the real pybit client."""

from decimal import Decimal

import pytest
from pybit.exceptions import InvalidRequestError

from simulator.testing import SimulatorControlError


def log_rows(session, **params) -> list[dict]:
    return session.get_transaction_log(accountType="UNIFIED", **params)["result"]["list"]


def wallet(session) -> dict:
    return session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]


def test_a_deposit_and_a_withdrawal_change_the_wallet_and_write_transfer_rows(sim, session):
    sim.transfer("2000")
    sim.transfer("-500.5")

    account = wallet(session)
    assert (account["totalEquity"], account["totalWalletBalance"]) == ("11499.5", "11499.5")
    out, deposit = log_rows(session)
    assert (deposit["type"], deposit["currency"], deposit["cashFlow"], deposit["change"]) == (
        "TRANSFER_IN",
        "USDT",
        "2000",
        "2000",
    )
    assert deposit["cashBalance"] == "12000" and deposit["category"] == "" and deposit["side"] == "None"
    assert (out["type"], out["cashFlow"], out["change"], out["cashBalance"]) == (
        "TRANSFER_OUT",
        "-500.5",
        "-500.5",
        "11499.5",
    )
    assert int(out["transactionTime"]) >= int(deposit["transactionTime"]) and out["id"] != deposit["id"]


def test_the_transaction_log_answer_matches_bybits_example(sim, session, rest_shape):
    sim.transfer("100")
    session.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.010")

    rest_shape(
        session.get_transaction_log(accountType="UNIFIED", category="linear"), "account_transaction_log"
    )
    rest_shape(
        session.get_transaction_log(accountType="UNIFIED", type="TRANSFER_IN"), "account_transaction_log"
    )


def test_a_fill_writes_a_trade_row_with_its_fee_realised_pnl_and_the_position_after(sim, session):
    session.place_order(category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.100")
    sim.set_price("BTCUSDT", "96000.00")
    session.place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.040", reduceOnly=True
    )

    close, opening = log_rows(session, category="linear", type="TRADE")
    # A sell of 0.1 at 97000 - 1 bp = 96990.30, fee 0.055 %: 5.3344665
    assert (opening["side"], opening["qty"], opening["size"], opening["tradePrice"]) == (
        "Sell",
        "0.100",
        "-0.100",
        "96990.30",
    )
    assert (opening["fee"], opening["cashFlow"], opening["change"], opening["feeRate"]) == (
        "5.3344665",
        "0",
        "-5.3344665",
        "0.00055",
    )
    # Buying back 0.04 at 96009.60 realises 0.04 x (96990.30 - 96009.60) = 39.228
    assert (close["size"], close["tradePrice"], close["cashFlow"]) == ("-0.060", "96009.60", "39.228")
    assert Decimal(close["change"]) == Decimal("39.228") - Decimal(close["fee"])
    assert Decimal(close["cashBalance"]) == Decimal("10000") - Decimal("5.3344665") + Decimal(close["change"])


def test_the_transaction_log_filters_by_currency_type_and_time_and_pages_by_cursor(sim, session):
    for amount in ("10", "20", "30"):
        sim.transfer(amount)
    sim.collateral("BTC", "60000", "0.9")
    sim.transfer("0.5", coin="BTC")

    assert [row["cashFlow"] for row in log_rows(session, currency="USDT")] == ["30", "20", "10"]
    assert [row["currency"] for row in log_rows(session, currency="BTC")] == ["BTC"]
    assert log_rows(session, type="TRANSFER_OUT") == [] and log_rows(session, category="linear") == []
    first = session.get_transaction_log(accountType="UNIFIED", limit=3)["result"]
    second = session.get_transaction_log(accountType="UNIFIED", limit=3, cursor=first["nextPageCursor"])[
        "result"
    ]
    assert [row["cashFlow"] for row in first["list"] + second["list"]] == ["0.5", "30", "20", "10"]
    assert second["nextPageCursor"] == ""
    after_all = int(first["list"][0]["transactionTime"]) + 1
    assert log_rows(session, startTime=after_all) == []
    assert len(log_rows(session, endTime=after_all)) == 4


@pytest.mark.parametrize(
    "params",
    [
        {"accountType": "CONTRACT"},
        {"category": "futures"},
        {"limit": 51},
        {"limit": 0},
        {"startTime": 1_700_000_000_000, "endTime": 1_700_000_000_000 + 7 * 86_400_000 + 1},
        {"cursor": "not-a-cursor"},
    ],
)
def test_bad_transaction_log_params_are_10001(sim, session, params):
    with pytest.raises(InvalidRequestError) as refused:
        session.get_transaction_log(**params)
    assert refused.value.status_code == 10001


def test_the_transaction_log_allows_25_requests_a_second(sim, make_session):
    session = make_session(sim)
    codes = []
    for _ in range(30):
        try:
            session.get_transaction_log(accountType="UNIFIED")
            codes.append(0)
        except InvalidRequestError as refused:
            codes.append(refused.status_code)
    assert codes.count(0) in (25, 26, 27) and set(codes) <= {0, 10006}  # 26+: a window rolled over


def test_a_hair_cut_coin_counts_fully_in_equity_and_after_its_haircut_in_the_margin(sim, session):
    sim.collateral("BTC", "60000", "0.8")
    sim.transfer("0.1", coin="BTC")  # 6000 USD, 4800 as margin
    session.place_order(category="linear", symbol="ETHUSDT", side="Buy", orderType="Market", qty="10.00")

    account = wallet(session)
    # 10 ETH at 3300 + 1 bp = 3300.33 at 10x: IM 3300.33, fee 18.151815; last price 3300: UPL -3.3
    assert account["totalInitialMargin"] == "3300.33" and account["totalPerpUPL"] == "-3.3"
    assert account["totalEquity"] == "15978.548185"  # USDT 9978.548185 + BTC 6000 (no haircut)
    assert account["totalWalletBalance"] == "14781.848185"  # USDT 9981.848185 + BTC 4800 (after it)
    assert account["totalMarginBalance"] == "14778.548185"
    assert account["accountIMRate"] == "0.2233"  # 3300.33 / 14778.548185 = 0.22331...
    assert account["totalAvailableBalance"] == "11478.218185"
    usdt, btc = account["coin"]
    assert (btc["coin"], btc["equity"], btc["walletBalance"], btc["usdValue"]) == (
        "BTC",
        "0.1",
        "0.1",
        "6000",
    )
    assert (usdt["coin"], usdt["equity"], usdt["usdValue"]) == ("USDT", "9978.548185", "9978.548185")

    sim.collateral("BTC", "30000", "0.8")  # the coin halves: the margin balance loses 2400
    assert wallet(session)["totalMarginBalance"] == "12378.548185"


def test_the_wallet_stream_pushes_a_deposit_and_a_collateral_change(sim, private_ws, inbox, subscribed):
    ws = private_ws()
    wallets = inbox()
    ws.wallet_stream(wallets)
    subscribed(sim, "wallet")

    sim.transfer("250")
    wallets.wait_for(lambda m: m["data"][0]["totalWalletBalance"] == "10250")
    sim.collateral("USDC", "1", "0.9")
    sim.transfer("1000", coin="USDC")
    pushed = wallets.wait_for(lambda m: m["data"][0]["totalWalletBalance"] == "11150")
    assert pushed["data"][0]["totalEquity"] == "11250"
    assert [coin["coin"] for coin in pushed["data"][0]["coin"]] == ["USDT", "USDC"]


@pytest.mark.parametrize(
    ("path", "body", "problem"),
    [
        ("/sim/transfer", {"amount": "-10001"}, "cannot withdraw"),
        ("/sim/transfer", {"amount": "0"}, "zero"),
        ("/sim/transfer", {"coin": "BTC", "amount": "1"}, "no price yet"),
        ("/sim/transfer", {"coin": "btc", "amount": "1"}, "uppercase"),
        ("/sim/collateral", {"coin": "BTC", "usdPrice": "0", "collateralRatio": "0.5"}, "positive"),
        ("/sim/collateral", {"coin": "BTC", "usdPrice": "1", "collateralRatio": "1.5"}, "within"),
        ("/sim/collateral", {"coin": "USDT", "usdPrice": "1", "collateralRatio": "1"}, "settlement"),
    ],
)
def test_the_money_controls_refuse_what_cannot_happen(sim, path, body, problem):
    with pytest.raises(SimulatorControlError, match=problem):
        sim._call("POST", path, body)
    assert sim.state()["wallet"]["totalEquity"] == "10000"


def test_a_reset_forgets_transfers_and_collateral(sim, session):
    sim.collateral("BTC", "60000", "0.8")
    sim.transfer("0.1", coin="BTC")
    sim.transfer("100")

    sim.reset()

    assert log_rows(session) == [] and [coin["coin"] for coin in wallet(session)["coin"]] == ["USDT"]
