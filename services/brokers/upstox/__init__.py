"""Upstox on its official SDK (``upstox-python-sdk``, imported as ``upstox_client``).

The SDK is imported lazily inside the adapter modules: it costs about 0.2 s and installs a
top-level ``test`` package that must never be picked up by the bundle.
"""
