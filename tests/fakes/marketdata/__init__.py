"""Fake market-data providers on 127.0.0.1, speaking each provider's real wire format.

One aiohttp server (``FakeMarketData``) hosts them all, each under the host name it
impersonates: ``http://127.0.0.1:PORT/<host>/<path>`` stands for ``https://<host>/<path>``.
The real client libraries reach it through a URL rewrite (yfinance) or a base URL setting
(our own NSE, Alpha Vantage and Polygon clients).
"""

from tests.fakes.marketdata.server import FakeMarketData

__all__ = ["FakeMarketData"]
