"""Angel One SmartAPI on the official smartapi-python SDK.

Only ``sdk`` imports the SDK (lazily, with its import-time network call and log files
contained); ``config``, ``wire``, ``mapping``, ``errors`` and ``instruments`` are pure and
cheap to import.
"""
