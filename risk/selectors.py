"""Read-side queries of the risk app."""

from __future__ import annotations

from risk.models import RiskSettings
from trading.selectors import RiskLevels


def engine_risk_levels() -> RiskLevels:
    """The levels the liquidation engine guards its entries with (handed over in `RiskConfig.ready`)."""
    risk = RiskSettings.load()
    return RiskLevels(
        equity_usdt=risk.equity_usdt,
        im_warn_pct=risk.im_warn_pct,
        im_block_pct=risk.im_reduce_pct,
        max_open_positions=risk.max_open_positions,
    )
