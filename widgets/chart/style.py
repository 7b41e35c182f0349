"""Colours and sizes of the chart, in one place so a theme can change them together."""

from __future__ import annotations

BACKGROUND = "#131722"
PANEL = "#1e222d"
GRID = "#1e2331"  # opaque: a translucent grid costs most of a frame
TEXT = "#b2b5be"
TEXT_BRIGHT = "#d1d4dc"
AXIS = "#2a2e39"
UP = "#26a69a"
DOWN = "#ef5350"
CROSSHAIR = "#758696"
CROSSHAIR_LABEL = "#363c4e"  # the badges on the axes under the crosshair
VOLUME_ALPHA = 110  # of 255: volume sits behind, candles are the subject
OVERLAY_COLOURS = ("#f0b90b", "#2962ff", "#e040fb", "#00bcd4", "#ff9800")
BODY_WIDTH = 0.7  # of one bar slot
FONT_PT = 9
DEFAULT_VISIBLE_BARS = 120
RIGHT_MARGIN_BARS = 6  # empty slots right of the last bar, as trading charts leave
