"""Where Angel One's servers are and the limits Angel publishes; production by default.

Tests point ``AngelEndpoints`` at the loopback fake, so they exercise the same code path as
production. Limits come from Angel's rate-limit page as summarised in research/wave2.md §1
(they supersede the older 20/s figure): place, modify and cancel count *together* against
9 a second, 500 a minute and 1,000 an hour per client code; an excess is answered with HTTP
403 "Access denied because of exceeding rate limit".
"""

from __future__ import annotations

from dataclasses import dataclass

BROKER_ID = "angelone"
DISPLAY_NAME = "Angel One"

# place + modify + cancel, cumulative, as (window seconds, requests) pairs.
ORDER_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 9), (60.0, 500), (3600.0, 1000))
# getCandleData: 3 a second, 180 a minute, 5,000 an hour.
HISTORY_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 3), (60.0, 180), (3600.0, 5000))
# Order book, trade book, positions, holdings: 1 a second each.
BOOK_INTERVAL = 1.0

# SmartWebSocketV2 accepts 1,000 token x mode subscriptions per connection (E1002 beyond).
TOKENS_PER_CONNECTION = 1000
MAX_CONNECTIONS = 3

# ``ordertag`` must be shorter than 20 characters (AB4008).
MAX_TAG_LENGTH = 19


@dataclass(frozen=True, slots=True)
class AngelEndpoints:
    """The SDK's REST root, the market-data socket, and the daily instrument master."""

    root: str = "https://apiconnect.angelone.in"
    stream: str = "wss://smartapisocket.angelone.in/smart-stream"
    scrip_master: str = (
        "https://margincalculator.angelone.in/OpenAPI_File/files/OpenAPIScripMaster.json"
    )
