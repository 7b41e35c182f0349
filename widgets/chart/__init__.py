"""The live candlestick chart widget; see ``widgets.chart.widget`` for why it is built so."""

from widgets.chart.widget import ChartWidget

__all__ = ["ChartWidget"]
