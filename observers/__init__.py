"""Observer backends, installed as ``labrun.observers``; each is imported only when used.

Observers are chosen by URL (``-o file://runs``; see ``labrun.observer_registry``) or added to
``ex.observers`` directly: ``from labrun.observers import FileStorageObserver`` (as from sacred.observers).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"FileStorageObserver": "labrun.observers.file_storage"}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labrun.observers' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
