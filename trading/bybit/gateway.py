"""The Bybit V5 REST gateway: our types in, our types and errors out.

Everything that trades goes through ``BybitGateway``; only this package
imports pybit. It points at the local simulator, Bybit demo, testnet or
mainnet; the code path is the same.

Retry policy (pybit's own retries are switched off with ``retry_codes={0}``,
a set that never matches, and ``max_retries=1``, see exchange-facts):

* Reads, cancels and idempotent settings retry on ``RetryableError``
  (10000, 10006, 10016, HTTP 429/5xx, timeouts, connection failures) with
  backoff; a rate limit waits until ``X-Bapi-Limit-Reset-Timestamp``.
* 10002 (clock outside the server's window) resyncs our clock offset from
  ``/v5/market/time`` and retries once, for every call including orders: the
  request was refused at the door, so nothing was placed.
* Order creation is never blindly retried. A timeout, connection failure,
  10000/10016 or HTTP 5xx after sending means "outcome unknown": the order is
  looked up by ``orderLinkId`` (found in any state) and resent, with the same
  id, only if it is definitely absent. 110072 (id already used) is answered
  by looking the order up and returning it. 10006 on an order is a definite
  refusal and is raised as ``RetryableError`` for the caller to decide
  (a late liquidation entry is usually a stale one).

Threads: pybit keeps one ``requests.Session`` per client and sessions are not
meant to be shared between threads, so the gateway keeps one pybit client per
thread (``threading.local``). One gateway per process is enough; it is safe to
call from several threads (e.g. ``asyncio.to_thread``). The clock offset,
position mode and instrument table are shared.
"""

from __future__ import annotations

import logging
from typing import Any

from trading.bybit.account import AccountCalls
from trading.bybit.batch import BatchOrderCalls
from trading.bybit.market import MarketCalls
from trading.bybit.orders import OrderCalls
from trading.bybit.types import CATEGORY, ExchangeMode, PositionMode
from trading.errors import AuthError, ClockSkewError, GatewayError, IpBanned, RetryableError
from trading.instruments import InstrumentCache
from trading.rules import Side

logger = logging.getLogger(__name__)

DEFAULT_SIM_BASE_URL = "http://127.0.0.1:8601"


class BybitGateway(BatchOrderCalls, OrderCalls, AccountCalls, MarketCalls):
    """Bybit V5 (linear USDT perpetuals, unified account) through pybit. See the module docstring.

    The calls live in their mixins (``trading.bybit.orders``, ``.batch``, ``.account``,
    ``.market``) over the transport ``trading.bybit.http.BybitHttp``; this class holds
    configuration and the start-up state they share.
    """

    def __init__(
        self,
        *,
        mode: ExchangeMode | str,
        api_key: str | None,
        api_secret: str | None,
        base_url: str | None = None,
        timeout: float = 10.0,
        recv_window_ms: int = 5000,
        dcp_window_s: int = 0,
        position_mode: PositionMode | str | None = None,
        max_attempts: int = 4,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 2.0,
    ) -> None:
        """``base_url`` is required for (and only used by) ``sim`` mode.

        ``position_mode`` ``None`` detects it from the venue on first need.
        ``max_attempts`` bounds tries of a retryable read/cancel (1 = no retry).
        ``dcp_window_s`` 0 leaves disconnect-cancel alone; 3-300 is set by ``prepare()``.
        """
        mode = ExchangeMode(mode)
        if mode is ExchangeMode.SIM and not base_url:
            raise ValueError("sim mode needs base_url")
        if dcp_window_s and not 3 <= dcp_window_s <= 300:
            raise ValueError(f"dcp_window_s must be 0 (off) or 3-300, got {dcp_window_s}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        super().__init__(
            mode=mode,
            api_key=api_key,
            api_secret=api_secret,
            base_url=base_url,
            timeout=timeout,
            recv_window_ms=recv_window_ms,
            max_attempts=max_attempts,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
        )
        self.dcp_window_s = dcp_window_s
        # What prepare() made of the DCP window: set (only then may a private stream subscribe
        # dcp.future), or refused by the venue (the error, for the caller to journal and alert).
        self.dcp_active = False
        self.dcp_refusal: GatewayError | None = None
        self._position_mode = PositionMode(position_mode) if position_mode else None
        self._account_id: str | None = None
        self.instruments = InstrumentCache(load=self.fetch_instruments)

    def __repr__(self) -> str:  # never show keys
        return f"BybitGateway(mode={self.mode.value!r}, endpoint={self.endpoint!r})"

    @classmethod
    def from_settings(cls, **overrides: Any) -> BybitGateway:
        """A gateway configured from Django settings (``EXCHANGE_MODE`` etc.).

        Fails loudly when a non-sim mode has no key or secret.
        """
        from django.conf import settings

        mode = ExchangeMode(getattr(settings, "EXCHANGE_MODE", ExchangeMode.SIM.value))
        if mode is ExchangeMode.SIM:
            api_key = getattr(settings, "SIM_API_KEY", "sim-api-key")
            api_secret = getattr(settings, "SIM_API_SECRET", "sim-api-secret")
            base_url = getattr(settings, "SIM_BASE_URL", DEFAULT_SIM_BASE_URL)
        else:
            api_key = getattr(settings, "BYBIT_API_KEY", "")
            api_secret = getattr(settings, "BYBIT_API_SECRET", "")
            base_url = None
            if not api_key or not api_secret:
                raise AuthError(None, f"BYBIT_API_KEY and BYBIT_API_SECRET are required in {mode.value} mode")
        default_dcp = 10 if mode is ExchangeMode.LIVE else 0
        options: dict[str, Any] = {
            "mode": mode,
            "api_key": api_key,
            "api_secret": api_secret,
            "base_url": base_url,
            "timeout": float(getattr(settings, "BYBIT_HTTP_TIMEOUT_S", 10.0)),
            "dcp_window_s": int(getattr(settings, "BYBIT_DCP_WINDOW_S", default_dcp)),
            "position_mode": getattr(settings, "BYBIT_POSITION_MODE", None) or None,
        }
        options.update(overrides)
        return cls(**options)

    # -- start-up -------------------------------------------------------------

    def prepare(self) -> None:
        """Do the slow, one-off work before trading: clock, instruments, the account's identity
        (which also proves the key: a refused one raises ``AuthError`` here), position mode, DCP window.

        Call it once at process start so the first order pays none of it.
        """
        self.sync_clock()
        self.instruments.refresh()
        self.account_id()
        self.position_mode()
        if self.dcp_window_s:
            self._prepare_dcp()

    def _prepare_dcp(self) -> None:
        """Set the DCP window, best effort: Bybit switches DCP on only for some (institutional)
        accounts and refuses the call on the others, and a refusal must not stop trading or
        protection from starting. It is kept in ``dcp_refusal`` (the engine journals and alerts
        it) and ``dcp_active`` stays False, so no stream subscribes ``dcp.future``. The key was
        proven by ``account_id()`` moments before, so even an auth-looking retCode here (10005,
        permission denied) is about DCP, not the key. A venue that does not answer (retryable)
        (or a clock or IP problem, which every other call has too) fails ``prepare()`` as any
        other start-up call would: it is retried."""
        try:
            self.set_dcp_window(seconds=self.dcp_window_s)
        except (RetryableError, ClockSkewError, IpBanned):
            raise
        except GatewayError as error:
            self.dcp_active, self.dcp_refusal = False, error
            logger.warning("dcp_refused code=%s message=%s", error.code, error.message)
            return
        self.dcp_active, self.dcp_refusal = True, None

    def account_id(self) -> str:
        """Which account this gateway trades: the mode and the key's Bybit UID (``"demo:53888001"``),
        read once from ``/v5/user/query-api``. The keys come from settings, so a change of
        account is a restart, and the cached answer holds for the gateway's life."""
        if self._account_id is None:
            self._account_id = self.api_key_info().account_id(self.mode)
        return self._account_id

    def position_mode(self) -> PositionMode:
        """The account's position mode, from the constructor or detected once from the venue.

        Bybit has no "get mode" call; a position query for one symbol returns
        its rows even when flat: one row with positionIdx 0 in one-way mode,
        rows with 1 and 2 in hedge mode.
        """
        if self._position_mode is None:
            symbols = self.instruments.symbols()
            symbol = "BTCUSDT" if "BTCUSDT" in symbols or not symbols else symbols[0]
            params = {"category": CATEGORY, "symbol": symbol}
            result = self._request("get_positions", params).get("result") or {}
            indexes = {int(row.get("positionIdx") or 0) for row in result.get("list") or []}
            self._position_mode = PositionMode.HEDGE if indexes & {1, 2} else PositionMode.ONE_WAY
        return self._position_mode

    def _position_idx(self, *, side: Side, reduce_only: bool) -> int:
        if self._position_mode is None:
            self.position_mode()
        if self._position_mode is PositionMode.ONE_WAY:
            return 0
        # Hedge: 1 is the long side, 2 the short side. A Buy opens a long and a
        # reduce-only Buy closes a short.
        return 1 if (side is Side.BUY) != reduce_only else 2
