"""The simulated NSE market: the embedded default feed, so the terminal runs with no account."""

from services.simulator.market import MarketSimulator

__all__ = ["MarketSimulator"]
