"""Sacred's ``LogFileWriter``: the TensorBoard log folders that TensorFlow code writes, recorded in the run's
``info["tensorflow"]["logdirs"]``. TensorFlow is imported only when the writer is entered, never before.

    @ex.main
    @LogFileWriter(ex)
    def main():
        writer = tf.summary.create_file_writer("logs/run1")   # "logs/run1" is recorded
"""

from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["LogFileWriter"]

_PATCHED = (("summary", "create_file_writer"), ("compat.v1.summary", "FileWriter"), ("summary", "FileWriter"))


class LogFileWriter:
    """A context manager and decorator that records the folder of every summary writer created inside it."""

    def __init__(self, experiment: Any):
        self.experiment = experiment
        self._undo: list[tuple[Any, str, Any]] = []

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return wrapped

    def __enter__(self) -> "LogFileWriter":
        try:
            import tensorflow as tf
        except ImportError:
            raise ImportError("LogFileWriter records TensorFlow's log folders, and TensorFlow is not installed: "
                              "pip install tensorflow") from None
        for owner_path, name in _PATCHED:
            owner: Any = tf
            for part in owner_path.split("."):
                owner = getattr(owner, part, None)
            original = getattr(owner, name, None) if owner is not None else None
            if original is not None:
                self._undo.append((owner, name, original))
                setattr(owner, name, self._recording(original))
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    def _recording(self, create: Callable[..., Any]) -> Callable[..., Any]:
        def create_and_record(logdir: Any, *args: Any, **kwargs: Any) -> Any:
            run = self.experiment.current_run
            if run is not None:
                logdirs = run.info.setdefault("tensorflow", {}).setdefault("logdirs", [])
                logdirs.append(str(logdir))
            return create(logdir, *args, **kwargs)

        return create_and_record
