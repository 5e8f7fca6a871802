"""HTTP clients of the chaos driver: the simulator's /sim/ control surface, and the panel's
REST API with the token (every answer kept, for the record and the secrets grep)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

from chaos.records import ApiCall


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def http_json(
    method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 30
):
    """(status, text) of one request; an HTTP error status is an answer too."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as failure:
        return failure.code, failure.read().decode(errors="replace")


class SimControl:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(self, method: str, path: str, body: dict | None = None):
        status, text = http_json(method, self.base_url + path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {text[:300]}")
        return json.loads(text)

    def call_through_faults(self, method: str, path: str):
        """A venue (not /sim/) request that an injected fault may refuse: None then."""
        status, text = http_json(method, self.base_url + path)
        answer = json.loads(text) if status == 200 else None
        return answer if answer is not None and answer.get("retCode") == 0 else None

    def answers(self) -> bool:
        try:
            self.call("GET", "/v5/market/time")
            return True
        except OSError:
            return False

    def state(self) -> dict:
        return self.call("GET", "/sim/state")

    def record(self) -> dict:
        return self.call("GET", "/sim/record")

    def price(self, symbol: str) -> str:
        return self.state()["prices"][symbol]

    def set_price(self, symbol: str, price) -> None:
        self.call("POST", "/sim/price", {"symbol": symbol, "price": str(price)})

    def liquidation(self, symbol: str, side: str, price, qty) -> None:
        self.call(
            "POST", "/sim/liquidation", {"symbol": symbol, "side": side, "price": str(price), "qty": str(qty)}
        )

    def fault(self, body: dict) -> dict:
        return self.call("POST", "/sim/fault", body)

    def vwap(self, symbol: str, minutes: int = 60) -> Decimal:
        """Turnover over volume of the last `minutes` 1-minute candles (the engine's VWAP)."""
        path = f"/v5/market/kline?category=linear&symbol={symbol}&interval=1&limit={minutes}"
        for _attempt in range(50):  # an injected fault ("*": 10006, 5xx) answers the driver too
            answer = self.call_through_faults("GET", path)
            if answer is not None:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"no klines for {symbol} through the faults")
        rows = answer["result"]["list"]
        volume = sum(Decimal(row[5]) for row in rows)
        return sum(Decimal(row[6]) for row in rows) / volume if volume else Decimal(self.price(symbol))

    def instruments(self) -> list[dict]:
        answer = None
        while answer is None:
            answer = self.call_through_faults("GET", "/v5/market/instruments-info?category=linear&limit=1000")
        return answer["result"]["list"]


class Panel:
    """The panel's API as the owner calls it. Connection failures (the web process being
    killed) are retried for up to `retry_s`; every answer is kept in `calls` and `texts`."""

    def __init__(self, base_url: str, token: str, retry_s: float = 60.0) -> None:
        self.base_url = base_url
        self.token = token
        self.retry_s = retry_s
        self.calls: list[ApiCall] = []
        self.texts: list[str] = []

    def call(
        self, name: str, method: str, path: str, body: dict | None = None, timeout: float = 120
    ) -> ApiCall:
        deadline = time.monotonic() + self.retry_s
        while True:
            sent_ms = _now_ms()
            try:
                status, text = http_json(
                    method, self.base_url + path, body, {"Authorization": f"Bearer {self.token}"}, timeout
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.texts.append(f"{method} {path} {status}\n{text}")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = {"text": text[:500]}
        call = ApiCall(
            name, sent_ms, _now_ms(), status, parsed if isinstance(parsed, dict) else {"list": parsed}
        )
        self.calls.append(call)
        return call
