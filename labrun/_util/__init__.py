"""Small helpers used across labrun; internal, not part of the public API."""
