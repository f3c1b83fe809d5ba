"""Paths as a user would type them."""

from __future__ import annotations

import os


def display_path(path: str) -> str:
    """``path`` relative to the working directory, unless it is far from it (then absolute reads better)."""
    relative = os.path.relpath(path)
    return path if relative.startswith(os.path.join("..", "..")) else relative
