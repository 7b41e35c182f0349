"""A loopback Upstox for tests: REST, login, instrument master, Feed V3 and portfolio stream."""

from tests.fakes.upstox.server import FakeUpstox, default_instruments

__all__ = ["FakeUpstox", "default_instruments"]
