"""A faithful local Angel One (SmartAPI REST + SmartWebSocketV2 binary stream) for tests."""

from tests.fakes.angelone.server import FakeAngel, ScripRow, default_scrips

__all__ = ["FakeAngel", "ScripRow", "default_scrips"]
