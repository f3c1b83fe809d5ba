"""Which runs a command names: ``runs/7``, ``STORE ID...``, or a whole store filtered by ``--where``."""

from __future__ import annotations

import os
from typing import Any, Sequence

from labrun.errors import StoreReadError
from labrun.readback import open_store
from labrun.readback.store import RunList


def is_store(token: str) -> bool:
    """A MongoDB URL, or a folder that is a file store (it holds runs, not a run.json of its own)."""
    if token.startswith(("mongodb://", "mongodb+srv://", "file://")):
        return True
    return os.path.isdir(token) and not os.path.exists(os.path.join(token, "run.json"))


def select_runs(tokens: Sequence[str], where: Sequence[str] = (), sort: str | None = None) -> RunList:
    """``runs/7 runs/9``, ``runs 7 9``, ``mongodb://h/db 3 4``, or ``runs --where ...`` (a store alone: all of
    its runs that match). Runs keep the order they were named in; a whole store is sorted by ``sort``."""
    runs = RunList()
    store: Any = None
    named_any = False
    stores_alone = []
    for token in tokens:
        if is_store(token):
            store = open_store(token)
            stores_alone.append(store)
        elif os.path.isdir(token):
            folder = os.path.normpath(token)
            runs.append(open_store(os.path.dirname(folder) or ".").run(os.path.basename(folder)))
            named_any = True
        elif store is not None:
            if stores_alone and stores_alone[-1] is store:
                stores_alone.pop()
            runs.append(store.run(token))
            named_any = True
        else:
            raise StoreReadError(f"'{token}' is neither a run folder (runs/7) nor a store (a file store folder or a "
                                 f"mongodb:// URL); name runs as runs/7 or STORE ID...")
    for alone in stores_alone:
        runs.extend(alone.runs(where=list(where), sort=sort or "-start"))
    if where and named_any:  # named runs are filtered too (those of whole stores were already)
        from labrun.readback.query import matcher

        test, _keys = matcher(list(where))
        runs = RunList(r for r in runs if test(r))
    return runs
