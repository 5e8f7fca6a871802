"""The transport under ``BybitGateway``: pybit's HTTP client with a corrected clock, one per thread;
one call with its failures translated to our errors; the retry policy; paging; clock sync.

The policy itself (what retries, what never does) is stated in ``trading.bybit.gateway``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from trading.bybit.parsing import venue_time_ms
from trading.bybit.types import ExchangeMode, RateLimitStatus
from trading.errors import (
    AuthError,
    ClockSkewError,
    ExchangeUnreachable,
    MalformedAnswer,
    RetryableError,
    error_for_http_status,
    error_for_ret_code,
)

logger = logging.getLogger(__name__)

RATE_LIMIT_HEADER = "X-Bapi-Limit"
RATE_LIMIT_STATUS_HEADER = "X-Bapi-Limit-Status"
RATE_LIMIT_RESET_HEADER = "X-Bapi-Limit-Reset-Timestamp"
RATE_LIMITED = 10006  # retCode: over the rate limit; the reset header says when the window rolls


def _header_int(headers: Mapping[str, str] | None, name: str) -> int | None:
    """An integer header; requests' headers look names up case-insensitively, as Bybit's need."""
    if not headers:
        return None
    raw = headers.get(name)
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _reset_ms(headers: Mapping[str, str] | None) -> int | None:
    return _header_int(headers, RATE_LIMIT_RESET_HEADER)


def _rate_limit_status(headers: Mapping[str, str] | None) -> RateLimitStatus | None:
    if not headers:
        return None
    status = RateLimitStatus(
        limit=_header_int(headers, RATE_LIMIT_HEADER),
        remaining=_header_int(headers, RATE_LIMIT_STATUS_HEADER),
        reset_at_ms=_header_int(headers, RATE_LIMIT_RESET_HEADER),
    )
    return None if status == RateLimitStatus(None, None, None) else status


class _ClockOffset:
    """Milliseconds to add to the local clock to get the venue's; shared by every thread's client."""

    __slots__ = ("ms",)

    def __init__(self) -> None:
        self.ms = 0


class _ClockCorrectedHTTP(HTTP):
    """pybit's HTTP client, signing with local time + the venue clock offset.

    pybit 5.17.0 stamps ``X-BAPI-TIMESTAMP`` with the raw local clock inside
    ``_prepare_headers`` and offers no hook for an offset. Bybit refuses a
    timestamp that is >= 1 s ahead of its clock whatever the recv_window
    (10002), so resyncing needs our own timestamp. This override repeats
    pybit's header set exactly; pybit is pinned in requirements.txt, so
    re-check this method when upgrading it.
    """

    clock_offset: _ClockOffset

    def _prepare_headers(self, payload, recv_window, content_type="application/json"):
        timestamp = int(time.time() * 1000) + self.clock_offset.ms
        signature = self._auth(payload=payload, recv_window=recv_window, timestamp=timestamp)
        return {
            "Content-Type": content_type,
            "X-BAPI-API-KEY": self.api_key,
            "X-BAPI-SIGN": signature,
            "X-BAPI-SIGN-TYPE": "2",
            "X-BAPI-TIMESTAMP": str(timestamp),
            "X-BAPI-RECV-WINDOW": str(recv_window),
        }


class BybitHttp:
    """Per-thread pybit clients sharing one clock offset, and the calls every gateway method is built on.

    ``BybitGateway`` and its call groups (market, orders, batch, account) extend this class.
    """

    def __init__(
        self,
        *,
        mode: ExchangeMode,
        api_key: str | None,
        api_secret: str | None,
        base_url: str | None,
        timeout: float,
        recv_window_ms: int,
        max_attempts: int,
        backoff_base_s: float,
        backoff_cap_s: float,
    ) -> None:
        self.mode = mode
        self._api_key = api_key or None
        self._api_secret = api_secret or None
        self.base_url = base_url.rstrip("/") if self.mode is ExchangeMode.SIM and base_url else None
        self.timeout = timeout
        self.recv_window_ms = recv_window_ms
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._clock_offset = _ClockOffset()
        self._local = threading.local()

    @property
    def endpoint(self) -> str:
        return self._client().endpoint

    def _client(self) -> _ClockCorrectedHTTP:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._new_client()
            self._local.client = client
        return client

    def _new_client(self) -> _ClockCorrectedHTTP:
        client = _ClockCorrectedHTTP(
            testnet=self.mode is ExchangeMode.TESTNET,
            demo=self.mode is ExchangeMode.DEMO,
            api_key=self._api_key,
            api_secret=self._api_secret,
            timeout=self.timeout,
            recv_window=self.recv_window_ms,
            # We retry ourselves; a non-empty set that never matches disables
            # pybit's retries (an empty set is silently replaced by its defaults).
            retry_codes={0},
            max_retries=1,
            return_response_headers=True,
        )
        client.clock_offset = self._clock_offset
        if self.base_url:
            # pybit builds every URL from ``endpoint`` at call time.
            client.endpoint = self.base_url
        # requests re-reads proxy settings from the whole environment on every call
        # (about 0.3 ms of a 0.7 ms local order, measured): read them once, here.
        session = client.client
        session.proxies.update(requests.utils.get_environ_proxies(client.endpoint))
        session.trust_env = False
        return client

    def rate_limit_status(self, method: str) -> RateLimitStatus | None:
        """The rate-limit headers of the last answer to ``method`` (pybit's name, e.g.
        ``"place_order"``, ``"place_batch_order"``, ``"cancel_all_orders"``) on *this thread*;
        ``None`` when that call got no answer with headers (or none was made here yet).

        Per thread because the answers of parallel calls interleave: a caller that sent one
        request from a thread reads the budget that request's answer named.
        """
        return self._limits().get(method)

    def venue_seconds_until(self, venue_ms: int) -> float:
        """Seconds on our clock until the venue's clock shows ``venue_ms`` (negative: past)."""
        return (venue_ms - (time.time() * 1000 + self._clock_offset.ms)) / 1000

    def _limits(self) -> dict[str, RateLimitStatus | None]:
        limits = getattr(self._local, "limits", None)
        if limits is None:
            limits = self._local.limits = {}
        return limits

    def _call_once(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One pybit call, its failures translated to our errors. Returns the whole JSON envelope."""
        limits = self._limits()
        limits[method] = None  # until this call's answer says otherwise
        try:
            body, _elapsed, headers = getattr(self._client(), method)(**params)
            limits[method] = _rate_limit_status(headers)
        except InvalidRequestError as exc:
            limits[method] = _rate_limit_status(exc.resp_headers)
            if type(exc.status_code) is not int:
                raise ExchangeUnreachable(None, "answer with a retCode that is not a number") from None
            raise error_for_ret_code(
                exc.status_code, exc.message, retry_at_ms=_reset_ms(exc.resp_headers)
            ) from None
        except FailedRequestError as exc:
            if exc.resp_headers is None:
                # pybit's own failure with no HTTP answer behind it (a body that was not JSON).
                raise ExchangeUnreachable(None, "answer was not JSON") from None
            raise error_for_http_status(exc.status_code, retry_at_ms=_reset_ms(exc.resp_headers)) from None
        except requests.RequestException as exc:
            # Timeouts, refused/reset connections, truncated bodies: no usable answer.
            raise ExchangeUnreachable(None, f"no answer: {type(exc).__name__}") from None
        except PermissionError:
            # pybit raises this before sending when keys are missing.
            raise AuthError(None, "this call needs an API key and secret") from None
        except (AttributeError, TypeError, KeyError):
            # pybit reads the envelope blindly: a JSON list, a number, a retCode without a
            # retMsg. Like a body that was not JSON, no usable answer (an order's outcome is
            # then looked up by orderLinkId, never guessed).
            raise ExchangeUnreachable(None, "answer was not a Bybit envelope") from None
        result = body.get("result") if isinstance(body, dict) else []
        if result is not None and not isinstance(result, dict):
            raise ExchangeUnreachable(None, "answer was not a Bybit envelope")
        return body

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """``_call_once`` with our policy: resync the clock once on 10002; back off and retry retryables."""
        attempt = 0
        clock_resynced = False
        while True:
            attempt += 1
            try:
                return self._call_once(method, params)
            except ClockSkewError:
                if clock_resynced:
                    raise
                clock_resynced = True
                self.sync_clock()
            except RetryableError as error:
                if attempt >= self.max_attempts:
                    raise
                delay = self._retry_delay_s(error, attempt)
                logger.warning(
                    "gateway_retry method=%s code=%s attempt=%d delay_s=%.3f",
                    method,
                    error.code,
                    attempt,
                    delay,
                )
                time.sleep(delay)

    def _retry_delay_s(self, error: RetryableError, attempt: int) -> float:
        """A rate limit waits until the venue's reset stamp; anything else backs off exponentially. Capped."""
        if error.code == RATE_LIMITED and error.retry_at_ms is not None:
            venue_now_ms = time.time() * 1000 + self._clock_offset.ms
            # +10 ms: the reset stamp is when the window rolls, be just past it.
            delay = (error.retry_at_ms - venue_now_ms + 10) / 1000
        else:
            delay = self.backoff_base_s * (2 ** (attempt - 1))
        return min(max(delay, 0.01), self.backoff_cap_s)

    def _paged(
        self, method: str, params: dict[str, Any], *, max_pages: int | None = None
    ) -> list[dict[str, Any]]:
        """Every ``result.list`` row, following ``nextPageCursor`` until it is empty."""
        rows: list[dict[str, Any]] = []
        cursor = None
        seen_cursors: set[str] = set()
        pages = 0
        while True:
            page_params = dict(params)
            if cursor:
                page_params["cursor"] = cursor
            result = self._request(method, page_params).get("result") or {}
            page = result.get("list") or []
            if not isinstance(page, list):
                raise MalformedAnswer(f"{method}: result.list is not a list")
            rows.extend(page)
            pages += 1
            cursor = result.get("nextPageCursor") or None
            if cursor is not None and type(cursor) is not str:
                raise MalformedAnswer(f"{method}: nextPageCursor is not text")
            if cursor in seen_cursors:
                # A venue that hands back a cursor it gave before would page forever.
                raise MalformedAnswer(f"{method}: nextPageCursor repeated")
            if cursor:
                seen_cursors.add(cursor)
            if not cursor or (max_pages is not None and pages >= max_pages):
                return rows

    def sync_clock(self) -> int:
        """Measure the venue clock offset from ``/v5/market/time``; returns it in ms.

        The offset is taken against the moment the answer *arrived*, so our
        corrected clock errs behind the venue (tolerated by recv_window), never
        ahead (refused at >= 1 s).
        """
        body = self._call_once("get_server_time", {})
        received_ms = time.time() * 1000
        venue_ms = venue_time_ms(body)
        offset = int(venue_ms - received_ms)
        if abs(offset - self._clock_offset.ms) > 500:
            logger.info("gateway_clock_resync offset_ms=%d previous_ms=%d", offset, self._clock_offset.ms)
        self._clock_offset.ms = offset
        return offset

    @property
    def clock_offset_ms(self) -> int:
        return self._clock_offset.ms
