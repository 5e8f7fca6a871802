"""Every Redis key, pub/sub channel and Channels group name, in one place.

Redis is shared state between processes (engine, workers, web, bridge): a name typed
twice is a bug waiting for a rename. Plain constants, importable without Django (the
container healthcheck reads the heartbeats before anything else starts).
Names with ``{...}`` are templates: ``ALERTS_WINDOW.format(bucket=...)``.
"""

# -- processes -----------------------------------------------------------------------
HEARTBEATS = "controlpanel:heartbeats"  # hash: process name -> {ts, pid, host}

# -- the trading switches -----------------------------------------------------------
TRADING_STATE = "controlpanel:trading_state"  # the switches as JSON, read at engine start
# Pub/sub: `trading_state` and `config` events. Pub/sub ignores database numbers, so the
# database is part of the name (core.redis_client.events_channel adds it).
EVENTS_CHANNEL_PREFIX = "controlpanel:events"

# -- the liquidation engine --------------------------------------------------------
ENGINE_STATS = "controlpanel:engine:stats"  # its figures, written with each journal flush
# The engine's recent liquidations on configured symbols, JSON rows, oldest first, capped.
ENGINE_LIQUIDATIONS = "controlpanel:engine:liquidations"
# The feeds' clocks, written every few seconds off the hot path: JSON
# {"at_ms", "feeds": {name: {"last_frame_ms", "connected"}}}; read by the feed-silent check.
ENGINE_FEEDS = "controlpanel:engine:feeds"
# Set when a start alerted that Bybit refused the DCP window; deleted when a start sets it.
ENGINE_DCP_REFUSAL_ALERTED = "controlpanel:engine:dcp_refusal_alerted"
DASHBOARD_GROUP = "dashboard"  # the Channels group the live dashboard listens on

# -- the account, as the worker last read it ---------------------------------------
ACCOUNT_SNAPSHOT = "controlpanel:account:snapshot"
ACCOUNT_SNAPSHOT_ERROR = "controlpanel:account:snapshot_error"
EQUITY_SAMPLES = "controlpanel:account:equity_samples"
EQUITY_SAMPLE_CLAIM = "controlpanel:account:equity_sample_claim"

# -- the exchange's reachability, as the worker's calls found it (core.exchange_status) --
EXCHANGE_STATUS = "controlpanel:exchange:status"
# -- alerts (core.alerts, core.alert_checks) ----------------------------------------
ALERTS_RECENT = "controlpanel:alerts:recent"  # list: every alert as JSON, newest first, capped
# Per bucket (a kind, or "trades" for the trade digest): the rate-limit window, a hash of
# its start, the messages sent in it and one field per text sent (sha1), ...
ALERTS_WINDOW = "controlpanel:alerts:window:{bucket}"
# ... and what was folded: "n", and per text "t:<text>" -> times, "o:<text>" -> first arrival
ALERTS_DIGEST = "controlpanel:alerts:digest:{bucket}"
ALERTS_DIGEST_DUE = (
    "controlpanel:alerts:digest_due"  # sorted set: bucket -> when its digest goes out (unix s)
)
ALERTS_PROCESSES_DOWN = "controlpanel:alerts:processes_down"  # set: processes reported missing, until back
ALERTS_FEED_SILENT = "controlpanel:alerts:feed_silent"  # set: feeds reported silent, until they speak again
ALERTS_CHECKS_SINCE = "controlpanel:alerts:checks_since"  # when the checks started (their start-up grace)

# -- risk ------------------------------------------------------------------------------
RISK_IM_WARN = "controlpanel:risk:im_warn_alerted"
RISK_IM_REDUCE = "controlpanel:risk:im_reduce"  # value: the run key of the reduction holding the cooldown
RISK_FAILURE_JOURNALED = "controlpanel:risk:failure_journaled:{what}"
# An unknown position already journaled and alerted: its symbol, positionIdx, side and createdTime.
RISK_UNKNOWN_POSITION_SEEN = "controlpanel:risk:unknown_position:{position}"

# -- portfolio momentum ----------------------------------------------------------
PM_SYMBOLS = "controlpanel:pm_symbols"  # symbols PM holds: written by portfolio, read by WL
PM_BOOK_LOCK = "controlpanel:pm:book_lock"
PM_FAILURE_JOURNALED = "controlpanel:pm:journaled:{what}"

# -- panic ------------------------------------------------------------------------------
PANIC_RUN = "panic:run"  # holds the run key of the flatten in progress
PANIC_RESULT = "panic:result:{run_key}"  # each run's result, for the triggers that waited on it
# The panic lock taken while the database could not take it (Telegram /close's fallback):
# JSON {since_ms, reason, by[, report]}, no expiry; every reader of the switches honours
# it (core.panic_lock) until panic.fallback.panic_lock_reconcile writes it into the database.
PANIC_FALLBACK_LOCK = "controlpanel:panic:fallback_lock"
