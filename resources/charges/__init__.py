"""Dated statutory rates and broker tariffs (see services/costs and docs/charges.md)."""
