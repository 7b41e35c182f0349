"""Builds the models runtime of a profile (``models.runtime``): the app only wires it.

The signing key comes from the OS keyring through ``app.commands.model``, which is why this
one function stays in the app layer.
"""

from __future__ import annotations

from collections.abc import Callable

from models.runtime import (
    ACTOR,
    HistorySource,
    ModelsConfig,
    ModelsRuntime,
    NoProductionModelError,
    OrderSubmit,
    PredictionResult,
    StageOrderError,
    UnknownSymbolError,
    members_text,
)
from services.bus import EventBus
from services.clock import Clock
from services.marketdata.service import HistoryService
from services.storage import Database

# The runtime's names, for the app's other modules (the HTTP API, the desktop).
__all__ = [
    "ACTOR",
    "HistorySource",
    "ModelsConfig",
    "ModelsRuntime",
    "NoProductionModelError",
    "OrderSubmit",
    "PredictionResult",
    "StageOrderError",
    "UnknownSymbolError",
    "build_models_runtime",
    "members_text",
]

def build_models_runtime(
    database: Database,
    bus: EventBus,
    clock: Clock,
    *,
    profile: str,
    symbol_known: Callable[[str], bool],
    history: HistoryService | HistorySource | None = None,
    order_submit: OrderSubmit | None = None,
    config: ModelsConfig | None = None,
) -> ModelsRuntime:
    """The runtime of a profile: artifacts in ``models/`` beside its database, signed with
    the profile's key from its secrets: a trusted OS keyring, else the vault inside
    ``database`` (the same key ``dalal model`` uses)."""
    from app.commands.model import signing_key

    return ModelsRuntime(
        database, bus, clock, artifacts_dir=database.path.parent / "models",
        signing_key=signing_key(profile, database, create=True), symbol_known=symbol_known,
        history=history, order_submit=order_submit, config=config,
    )
