"""Zerodha Kite Connect: the adapter (``adapter.KiteBroker``) and its pure helpers.

The submodules ``mapping``, ``ticker_decode``, ``throttle``, ``errors`` and ``instruments``
never import kiteconnect, so the CLI and the tests can use them without paying for the SDK.
"""
