"""Adapters for real brokers, each built on the broker's official SDK.

Nothing here imports an SDK at module import: the SDKs are slow to import and some have
side effects, so each adapter imports its SDK inside its own constructor or functions.
"""
