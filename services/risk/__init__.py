"""Pre-trade risk: limits, the trading state, the kill switch and the stuck-order monitor."""

from services.risk.context import CallbackContext, MarginModel, RiskContext, SimpleMarginModel
from services.risk.engine import LimitUsage, RiskEngine
from services.risk.killswitch import KillReport, KillSwitch
from services.risk.limits import OptionBand, RiskLimits, RiskProfiles
from services.risk.state import (
    AuditSink,
    JsonFileStateStore,
    MemoryStateStore,
    PersistedRiskState,
    StateStore,
    StateTransitionError,
    TradingState,
)
from services.risk.stuck import ReconcileReport, StuckOrderMonitor

__all__ = [
    "AuditSink",
    "CallbackContext",
    "JsonFileStateStore",
    "KillReport",
    "KillSwitch",
    "LimitUsage",
    "MarginModel",
    "MemoryStateStore",
    "OptionBand",
    "PersistedRiskState",
    "ReconcileReport",
    "RiskContext",
    "RiskEngine",
    "RiskLimits",
    "RiskProfiles",
    "SimpleMarginModel",
    "StateStore",
    "StateTransitionError",
    "StuckOrderMonitor",
    "TradingState",
]
