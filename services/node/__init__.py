"""The order node: what ``dalal headless`` adds to be a desktop's order path.

Orders must leave from the trader's registered static IP (SEBI, 1 April 2026), so the desktop
sends them to its own node (a VPS running headless), which places them with the broker. This
package holds the Qt-free parts both ends share: the wire format, idempotent order entry, the
event journal behind ``/v1/stream`` and the SEBI order-rate limit.
"""
