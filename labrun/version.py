"""The package version, kept apart so that setup.cfg can read it without importing labrun."""

__version__ = "0.1.0"
