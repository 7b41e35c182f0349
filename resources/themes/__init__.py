"""Bundled themes files (a package so importlib.resources and PyInstaller find them)."""
