"""orderLinkId: deterministic, short, Bybit-legal, distinct per decision."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.rules.order_link_id import is_valid_order_link_id, order_link_id, strategy_of

BYBIT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def test_same_decision_same_id():
    first = order_link_id(strategy="wl", symbol="BTCUSDT", decision_key="liq-1737936000123-7", leg="entry")
    again = order_link_id(strategy="wl", symbol="BTCUSDT", decision_key="liq-1737936000123-7", leg="entry")
    assert first == again


def test_it_reads_as_strategy_leg_and_coin():
    link_id = order_link_id(strategy="wl", symbol="BTCUSDT", decision_key="liq-1", leg="entry")
    assert link_id.startswith("wl-entry-BTC-")
    assert len(link_id) == len("wl-entry-BTC-") + 16


@pytest.mark.parametrize(
    "changed",
    [
        {"strategy": "pm"},
        {"symbol": "ETHUSDT"},
        {"decision_key": "liq-2"},
        {"leg": "tp"},
    ],
)
def test_any_different_input_gives_a_different_id(changed):
    base = {"strategy": "wl", "symbol": "BTCUSDT", "decision_key": "liq-1", "leg": "entry"}
    assert order_link_id(**base) != order_link_id(**{**base, **changed})


def test_separators_in_the_key_cannot_alias_another_decision():
    assert order_link_id(strategy="wl", symbol="BTCUSDT", decision_key="a|b") != order_link_id(
        strategy="wl", symbol="BTCUSDT|a", decision_key="b"
    )


def test_long_symbols_are_truncated_but_the_hash_keeps_them_apart():
    first = order_link_id(strategy="panic", symbol="1000000BABYDOGEUSDT", decision_key="k", leg="close")
    second = order_link_id(strategy="panic", symbol="1000000BABYDOGXUSDT", decision_key="k", leg="close")
    assert len(first) <= 36 and len(second) <= 36
    assert first != second


@pytest.mark.parametrize("bad", ["", "w l", "toolongstrategy", "wl!"])
def test_it_rejects_unreadable_tokens(bad):
    with pytest.raises(ValueError):
        order_link_id(strategy=bad, symbol="BTCUSDT", decision_key="k")


def test_strategy_is_read_back_only_from_our_ids():
    ours = order_link_id(strategy="pm", symbol="SOLUSDT", decision_key="scan-9", leg="add")
    assert strategy_of(ours) == "pm"
    assert strategy_of("") is None
    assert strategy_of("manual-order-from-the-app") is None
    assert strategy_of("c6f055d9-7f21-4079-913d-e6523a9cfffa") is None


ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
tokens = st.text(alphabet=ALPHANUMERIC, min_size=1, max_size=8)


@given(
    strategy=tokens,
    leg=tokens,
    symbol=st.text(min_size=1, max_size=40),
    decision_key=st.text(min_size=1, max_size=200),
)
def test_every_id_is_legal_for_bybit(strategy, leg, symbol, decision_key):
    link_id = order_link_id(strategy=strategy, symbol=symbol, decision_key=decision_key, leg=leg)
    assert BYBIT_ID.match(link_id)
    assert is_valid_order_link_id(link_id)
    assert strategy_of(link_id) == strategy
    assert link_id == order_link_id(strategy=strategy, symbol=symbol, decision_key=decision_key, leg=leg)


@given(keys=st.lists(st.text(min_size=1, max_size=30), min_size=2, max_size=50, unique=True))
def test_distinct_decisions_get_distinct_ids(keys):
    ids = {order_link_id(strategy="wl", symbol="BTCUSDT", decision_key=key) for key in keys}
    assert len(ids) == len(keys)
