"""Regression guard for the PySide6 6.12.0 / CPython 3.11 None-refcount bug.

That build decrements ``None``'s refcount on every void Qt call; once it reaches zero the
interpreter aborts, which in the terminal means a crash after a few thousand chart paints.
The paints run in a child process so that an abort fails this test instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import PySide6

CALLS = 20_000

CHILD = f"""
import json, sys
from PySide6 import QtCore, QtGui

app = QtGui.QGuiApplication([])
image = QtGui.QImage(320, 240, QtGui.QImage.Format.Format_ARGB32)
image.fill(QtGui.QColor("#131722"))
pen = QtGui.QPen(QtGui.QColor("#26a69a"))
pen.setCosmetic(True)
painter = QtGui.QPainter(image)
before = sys.getrefcount(None)
for i in range({CALLS}):
    painter.save()
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, i % 2 == 0)
    painter.setPen(pen)
    # the overloads the original crash was measured on: drawLine(QPointF, QPointF), drawRect
    painter.drawLine(QtCore.QPointF(i % 320, 0.0), QtCore.QPointF((i * 7) % 320, 239.0))
    painter.drawRect(QtCore.QRectF(i % 300, i % 200, 10.0, 20.0))
    painter.restore()
after = sys.getrefcount(None)
painter.end()
print(json.dumps({{"before": before, "after": after}}))
"""


def test_void_qt_calls_do_not_leak_none_refcount():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, f"child died ({proc.returncode}): {proc.stderr[-2000:]}"
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    # Six void calls per iteration: the broken build would lose about 120,000 references here
    # (in practice it aborts with none_dealloc long before, which fails the returncode check).
    assert abs(counts["after"] - counts["before"]) < 100, counts


def test_pyside_is_not_the_broken_build_on_python_311():
    if sys.version_info < (3, 12):
        assert PySide6.__version__ != "6.12.0", (
            "PySide6 6.12.0 crashes on CPython 3.11 (None refcount underflow): pin 6.11.x"
        )
