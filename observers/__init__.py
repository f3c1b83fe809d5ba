"""Observer backends, installed as ``labrun.observers``; each is imported only when used.

Observers are chosen by URL (``-o file://runs``; see ``labrun.recording.registry``) or added to
``ex.observers`` directly: ``from labrun.observers import FileStorageObserver`` (as from sacred.observers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labrun._util.lazy_exports import lazy_getattr

if TYPE_CHECKING:  # what a type checker sees; at run time each backend is imported on first use
    from labrun.observers.file_storage import FileStorageObserver
    from labrun.observers.mlflow import MlflowObserver
    from labrun.observer import SacredRunObserver as RunObserver
    from labrun.observers.mongo import MongoObserver, QueuedMongoObserver
    from labrun.observers.tensorboard import TensorBoardObserver

_EXPORTS = {
    "FileStorageObserver": "labrun.observers.file_storage",
    "MongoObserver": "labrun.observers.mongo",
    "QueuedMongoObserver": "labrun.observers.mongo",
    "TensorBoardObserver": "labrun.observers.tensorboard",
    "MlflowObserver": "labrun.observers.mlflow",
}

__all__ = [*_EXPORTS, "RunObserver"]

_lazy = lazy_getattr(__name__, _EXPORTS, globals())


def __getattr__(name: str) -> Any:
    if name == "RunObserver":  # Sacred's observer base class (its *_event methods), as sacred.observers has it
        from labrun.observer import SacredRunObserver

        return SacredRunObserver
    return _lazy(name)
