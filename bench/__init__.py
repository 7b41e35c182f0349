"""Benchmarks: each prints its figures with the target beside them (not part of the tests)."""
