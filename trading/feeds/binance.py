"""Binance USD-M ``!forceOrder@arr``: the all-market liquidation stream (also served by the simulator)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from trading.events import BINANCE, LiquidationEvent, MalformedMessage, Source, UnsupportedSymbol
from trading.feeds.binance_parsers import parse_binance_force_order
from trading.feeds.connection import WebsocketFeed

logger = logging.getLogger("trading.feeds")  # the package's one logger name, see connection.py

BINANCE_LIQUIDATION_URL = "wss://fstream.binance.com/market/ws/!forceOrder@arr"
SIM_BINANCE_LIQUIDATION_URL = "ws://127.0.0.1:8601/ws/!forceOrder@arr"


class BinanceLiquidationFeed(WebsocketFeed):
    """Binance USD-M ``!forceOrder@arr``: every liquidation (sampled: the latest per symbol per second).

    ``on_event(event)`` runs synchronously for each parsed event, on the event
    loop, directly from the frame handler: the engine decides and sends the order
    from it. ``on_malformed(frame, error)`` (optional) sees each rejected frame.
    In sim mode pass ``source="sim"``.

    Binance pings every 3 minutes and websockets answers; our own pings
    (``ping_interval_s``) detect a dead peer sooner. Binance closes a connection
    at 24 h, so we roll over at 23 h. The all-market stream can be quiet for
    minutes (95 s gaps in the recorded data), so ``silence_timeout_s`` defaults
    to 5 minutes: a needless reconnect is cheap, a dead stream is not.
    """

    name = "binance"

    def __init__(
        self,
        url: str = BINANCE_LIQUIDATION_URL,
        *,
        on_event: Callable[[LiquidationEvent], None],
        on_malformed: Callable[[Any, MalformedMessage], None] | None = None,
        source: Source = BINANCE,
        silence_timeout_s: float = 300.0,
        **options: Any,
    ) -> None:
        super().__init__(url, silence_timeout_s=silence_timeout_s, **options)
        self.on_event = on_event
        self.on_malformed = on_malformed
        self.source = source

    def _handle_frame(self, frame: str | bytes) -> None:
        try:
            event = parse_binance_force_order(frame, source=self.source)
        except UnsupportedSymbol:
            self.stats.unsupported += 1
            return
        except MalformedMessage as error:
            self._malformed(frame, error)
            if self.on_malformed is not None:
                try:
                    self.on_malformed(frame, error)
                except Exception:
                    self.stats.callback_errors += 1
                    logger.exception("feed_callback_failed feed=%s", self.name)
            return
        except Exception:
            self._parser_bug(frame)
            return
        self.stats.events += 1
        try:
            self.on_event(event)
        except Exception:
            self.stats.callback_errors += 1
            logger.exception("feed_callback_failed feed=%s", self.name)
