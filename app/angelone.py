"""Angel One wiring for the command line: endpoints from the settings, parts from the registry.

Only ``dalal login angelone`` and ``dalal check-connections`` use it; both build the adapters
through ``services.brokers.registry`` (nothing here talks to the SDK).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings
    from services.brokers.angelone.config import AngelEndpoints
    from services.brokers.ports import SecretStore
    from services.brokers.registry import BrokerParts
    from services.bus import EventBus
    from services.clock import Clock


def endpoints_for(settings: Settings) -> AngelEndpoints:
    from services.brokers.angelone.config import AngelEndpoints

    default = AngelEndpoints()
    angel = settings.angelone
    return AngelEndpoints(
        root=angel.api_root or default.root,
        stream=angel.stream_url or default.stream,
        scrip_master=angel.scrip_master_url or default.scrip_master,
        order_stream=angel.order_stream_url or "",
    )


def configured(settings: Settings, secrets: SecretStore | None) -> bool:
    from services.brokers.angelone.session import CREDENTIALS

    has_keyring = secrets is not None and secrets.get(CREDENTIALS) is not None
    return bool(settings.angelone.api_key) or has_keyring


def build_parts(
    settings: Settings,
    secrets: SecretStore | None,
    clock: Clock,
    *,
    timeout: float = 7.0,
    bus: EventBus | None = None,
) -> BrokerParts:
    from services.brokers import registry
    from services.bus import EventBus

    return registry.build(
        "angelone",
        registry.BrokerContext(
            clock,
            bus or EventBus(),
            secrets=secrets,
            endpoints=endpoints_for(settings),
            settings={"api_key": settings.angelone.api_key or ""},
            options={"timeout": timeout},
        ),
    )
