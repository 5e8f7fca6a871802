"""Constants shared by test modules and fixtures."""

# Prices the `sim` fixture sets after each reset.
START_PRICES = {"BTCUSDT": "97000.00", "ETHUSDT": "3300.00", "SOLUSDT": "180.000"}
