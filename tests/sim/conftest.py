"""Fixtures for the simulator's tests: a running simulator, real pybit clients, a shape checker."""

import threading
import time

import pytest
from pybit.unified_trading import HTTP

from simulator.testing import running_simulator
from tests.support.resources import bybit_example
from tests.support.sim import LocalWebSocket
from tests.support.waiting import wait_until


@pytest.fixture
def sim():
    """A fresh still-market simulator (default symbols, 10000 USDT, default rate tier)."""
    with running_simulator() as handle:
        yield handle


def make_session(sim, **options) -> HTTP:
    """The real pybit client pointed at the simulator.

    retry_codes={0} can never match (0 is success), so 10002/10006 surface at once as
    InvalidRequestError instead of pybit sleeping and retrying.
    """
    options.setdefault("retry_codes", {0})
    session = HTTP(
        api_key=options.pop("api_key", sim.api_key),
        api_secret=options.pop("api_secret", sim.api_secret),
        **options,
    )
    session.endpoint = sim.base_url
    return session


@pytest.fixture
def session(sim):
    return make_session(sim)


class Inbox:
    """Collects stream messages from pybit's callback thread; `wait_for` polls with a timeout."""

    def __init__(self):
        self.messages = []
        self._lock = threading.Lock()

    def __call__(self, message):
        with self._lock:
            self.messages.append(message)

    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for message in self.messages:
                    if predicate(message):
                        return message
            time.sleep(0.01)
        raise AssertionError(f"no matching message within {timeout}s; got {self.messages[-5:]}")


@pytest.fixture
def public_ws(sim):
    sockets = []

    def connect():
        ws = LocalWebSocket(sim.public_ws_url, channel_type="linear")
        sockets.append(ws)
        return ws

    yield connect
    for ws in sockets:
        ws.exit()


@pytest.fixture
def private_ws(sim):
    sockets = []

    def connect(**options):
        ws = LocalWebSocket(
            sim.private_ws_url,
            channel_type="private",
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            **options,
        )
        sockets.append(ws)
        return ws

    yield connect
    for ws in sockets:
        ws.exit()


# -- shapes -------------------------------------------------------------------------------


def _type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    return "object"


def key_paths(value, prefix="") -> dict[str, str]:
    """Key paths of a JSON value, read from Bybit's examples as tests/resources/README.md describes.

    A list is represented by its item [0]; the rows of a list of lists (kline) are
    checked position by position; `cumFeeDetail` is a map keyed by coin, so only its
    presence as an object counts; a null only needs the key to be present.
    """
    paths = {}
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths[path] = _type_name(item)
            if key == "cumFeeDetail":
                continue
            paths.update(key_paths(item, path))
    elif isinstance(value, list) and value:
        first = value[0]
        paths[f"{prefix}[0]"] = _type_name(first)
        if isinstance(first, list):
            for index, cell in enumerate(first):
                paths[f"{prefix}[0][{index}]"] = _type_name(cell)
        else:
            paths.update(key_paths(first, f"{prefix}[0]"))
    return paths


def shape_problems(actual, example_value) -> list[str]:
    expected = key_paths(example_value)
    got = key_paths(actual)
    problems = []
    for path, kind in expected.items():
        if path not in got:
            problems.append(f"missing {path}")
        elif kind != "null" and got[path] != kind:
            problems.append(f"{path}: {got[path]} instead of {kind}")
    return problems


def assert_rest_shape(answer: dict, name: str) -> None:
    """`result` (and a non-empty `retExtInfo`) carry every key path of Bybit's example, same types."""
    documented = bybit_example(name)
    assert answer["retCode"] == 0, answer
    for key in ("retCode", "retMsg", "result", "retExtInfo", "time"):
        assert key in answer, f"envelope lacks {key}"
    assert isinstance(answer["time"], int)
    problems = shape_problems(answer.get("result", {}), documented.get("result", {}))
    if documented.get("retExtInfo"):
        problems += shape_problems(answer["retExtInfo"], documented["retExtInfo"])
    assert not problems, f"{name}: {problems}"


def assert_ws_shape(message: dict, name: str) -> None:
    problems = shape_problems(message, bybit_example(name))
    assert not problems, f"{name}: {problems}"


# The simulator tests' own helpers reach them as fixtures; helpers shared across the suite
# are plain imports from tests/support/.


@pytest.fixture(name="make_session")
def make_session_fixture():
    return make_session


@pytest.fixture(name="rest_shape")
def rest_shape_fixture():
    return assert_rest_shape


@pytest.fixture(name="ws_shape")
def ws_shape_fixture():
    return assert_ws_shape


@pytest.fixture
def subscribed():
    """Wait until the simulator has `count` subscribers on every topic given."""

    def wait(sim, *topics, count=1):
        wait_until(lambda: all(sim.state()["subscriptions"].get(topic, 0) >= count for topic in topics))

    return wait


@pytest.fixture
def inbox():
    return Inbox


@pytest.fixture
def local_ws():
    """Open pybit WebSockets against any simulator URL; all are closed after the test."""
    sockets = []

    def connect(url, **options):
        ws = LocalWebSocket(url, **options)
        sockets.append(ws)
        return ws

    yield connect
    for ws in sockets:
        ws.exit()
