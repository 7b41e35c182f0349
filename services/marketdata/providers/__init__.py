"""Market-data providers; each declares its coverage (``services.marketdata.coverage``)."""
