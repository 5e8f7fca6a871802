"""Request signatures, checked the way Bybit checks them (docs/v5/guide.mdx).

REST: X-BAPI-SIGN = hex HMAC-SHA256(secret, timestamp + api_key + recv_window + payload),
where payload is the query string exactly as sent (GET) or the raw body bytes (POST):
never a re-serialisation, or a client that orders keys differently would be refused.
Websocket: HMAC-SHA256(secret, "GET/realtime" + expires).
"""

import hashlib
import hmac

from .errors import INVALID_KEY, INVALID_SIGN, REQUEST_EXPIRED, error

DEFAULT_RECV_WINDOW = 5000
# Bybit accepts a timestamp at most 1 s ahead of its own clock, whatever the recv_window.
FUTURE_TOLERANCE_MS = 1000


def signature(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_rest(headers, payload: bytes, keys: dict[str, str], now_ms: int) -> str:
    """The API key of a correctly signed request, or SimError 10003 / 10002 / 10004."""
    api_key = headers.get("X-BAPI-API-KEY", "")
    secret = keys.get(api_key)
    if not api_key or secret is None:
        raise error(INVALID_KEY)
    timestamp_text = headers.get("X-BAPI-TIMESTAMP", "")
    recv_window_text = headers.get("X-BAPI-RECV-WINDOW", "") or str(DEFAULT_RECV_WINDOW)
    if not timestamp_text.isdigit() or not recv_window_text.isdigit():
        raise error(REQUEST_EXPIRED, timestamp=timestamp_text, server=now_ms, recv_window=recv_window_text)
    timestamp = int(timestamp_text)
    recv_window = int(recv_window_text)
    if not now_ms - recv_window <= timestamp < now_ms + FUTURE_TOLERANCE_MS:
        raise error(REQUEST_EXPIRED, timestamp=timestamp, server=now_ms, recv_window=recv_window)
    expected = signature(secret, (timestamp_text + api_key + recv_window_text).encode() + payload)
    if not hmac.compare_digest(expected, headers.get("X-BAPI-SIGN", "").lower()):
        raise error(INVALID_SIGN)
    return api_key


def check_ws_auth(args, keys: dict[str, str], now_ms: int) -> tuple[str | None, str]:
    """(api_key, "") when a websocket auth op is valid, else (None, Bybit's message)."""
    if not isinstance(args, list) or len(args) != 3:
        return None, "Params Error"
    api_key, expires, sign = args
    secret = keys.get(api_key) if isinstance(api_key, str) else None
    if secret is None:
        return None, "Invalid apikey"
    if not isinstance(expires, (int, str)) or not str(expires).isdigit():
        return None, "Params Error"
    if int(expires) <= now_ms:
        return None, "Request expired"
    if not isinstance(sign, str) or not hmac.compare_digest(
        signature(secret, f"GET/realtime{expires}".encode()), sign.lower()
    ):
        return None, "Signature error"
    return api_key, ""
