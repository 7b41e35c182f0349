"""Render resources/icons/dalal.svg to the PNG sizes and the .ico the installers need.

The raster files are committed, so builds do not depend on an SVG renderer; run this again
(``.venv/bin/python packaging/make_icons.py``) only after editing the SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
PNG_SIZES = (16, 32, 48, 64, 128, 256)
ICO_SIZES = (16, 32, 48, 256)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication(sys.argv)
    renderer = QSvgRenderer(str(ICONS / "dalal.svg"))
    if not renderer.isValid():
        print("dalal.svg did not parse", file=sys.stderr)
        return 1
    images = {}
    for size in PNG_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        images[size] = image
        name = "dalal.png" if size == 256 else f"dalal-{size}.png"
        if not image.save(str(ICONS / name)):
            print(f"could not write {name}", file=sys.stderr)
            return 1
    # Qt's ico writer stores one image per file, so assemble the multi-size .ico by hand:
    # an ICONDIR header, one entry per image, then the PNG payloads (valid since Vista).
    payloads = [_png_bytes(images[s]) for s in ICO_SIZES]
    header = (0).to_bytes(2, "little") + (1).to_bytes(2, "little")
    header += len(payloads).to_bytes(2, "little")
    offset = 6 + 16 * len(payloads)
    entries = b""
    for size, data in zip(ICO_SIZES, payloads, strict=True):
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += bytes([dim, dim, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little")
        entries += len(data).to_bytes(4, "little") + offset.to_bytes(4, "little")
        offset += len(data)
    (ICONS / "dalal.ico").write_bytes(header + entries + b"".join(payloads))
    print(f"wrote PNGs {PNG_SIZES} and dalal.ico to {ICONS}")
    return 0


def _png_bytes(image: object) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[attr-defined]
    buffer.close()
    return bytes(data.data())


if __name__ == "__main__":
    sys.exit(main())
