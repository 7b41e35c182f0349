"""Embedded prediction models: features, training, registry, inference, A/B tests, monitoring.

This package is imported by the CLI and the desktop at start-up, so it must stay light: no
scikit-learn, joblib or scipy here. Import the submodule you need (``models.training``,
``models.registry``...); the heavy libraries load inside the functions that use them.
"""
