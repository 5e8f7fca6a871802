"""The kernel every app may use and that uses none of ours: Redis client and key names,
heartbeats and process helpers, the trading switches, the alert hook, the status snapshot,
and the admin and API building blocks the apps share."""
