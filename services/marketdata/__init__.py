"""Market data from real providers: history store, providers, router (issue 15)."""
