"""Tracebacks of failing runs without labrun's own frames, so the user's code is what shows."""

from __future__ import annotations

import os
import traceback

import wrapt

_HIDDEN_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (wrapt,)) + (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)  # the labrun package


def _is_internal(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_HIDDEN_DIRS)


def _filter(te: traceback.TracebackException, seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    frames = [f for f in te.stack if not _is_internal(f.filename)]
    te.stack = traceback.StackSummary.from_list(frames or list(te.stack[-1:]))
    for linked in (te.__cause__, te.__context__):
        if linked is not None:
            _filter(linked, seen)


def format_user_traceback(exc: BaseException, full: bool = False) -> str:
    """The traceback of ``exc``; without labrun's and wrapt's frames unless ``full``."""
    te = traceback.TracebackException.from_exception(exc)
    if full:
        return "".join(te.format())
    _filter(te, set())
    text = "".join(te.format())
    return text.replace("Traceback (most recent call last):",
                        "Traceback (most recent call last; labrun's frames hidden, -d shows them):", 1)
