"""Bundled data files: instrument lists, themes, monitoring rules."""
