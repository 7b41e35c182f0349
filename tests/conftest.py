"""Test-wide settings: Qt renders offscreen and nothing touches the user's real keyring or data."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TZ", "Asia/Kolkata")
