"""Which account a gateway trades: the mode and the key's Bybit UID, from `/v5/user/query-api`
(the simulator serves it too: one stable UID per API key)."""

from __future__ import annotations

import pytest

from simulator.payloads import user_id_for_key
from simulator.testing import running_simulator
from tests.support.sim import make_sim_gateway
from trading.errors import AuthError

pytestmark = pytest.mark.integration


def test_prepare_reads_the_account_once_and_names_it_by_mode_and_uid(sim, new_gateway):
    gateway = new_gateway()
    gateway.prepare()
    account = gateway.account_id()

    assert account == f"sim:{user_id_for_key(sim.api_key)}"
    info = gateway.api_key_info()
    assert info.user_id == user_id_for_key(sim.api_key) and not info.read_only
    sim.fault("/v5/user/query-api", mode="error", httpStatus=502, count=5)
    assert gateway.account_id() == account  # cached: no second call (the fault would fail it)


def test_another_key_is_another_account_and_the_uid_survives_a_restart(sim):
    with running_simulator(api_key="second-account-key", api_secret="second-secret") as other:
        second = make_sim_gateway(other).account_id()
    with running_simulator(api_key="second-account-key", api_secret="second-secret") as restarted:
        again = make_sim_gateway(restarted).account_id()
    assert second == again != make_sim_gateway(sim).account_id()
    assert 10_000_000 <= int(second.split(":")[1]) < 910_000_000


def test_a_wrong_key_fails_prepare_with_10003(new_gateway):
    with pytest.raises(AuthError) as refused:
        new_gateway(api_key="mistyped-key", position_mode="one_way").prepare()
    assert refused.value.code == 10003
