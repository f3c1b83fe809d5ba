"""Reading recorded runs back from a store, for ``labrun rerun`` and the other tools that look at old runs.

This path never imports the run machinery (Experiment, Run, journal, dispatcher): it reads what stores
wrote, in their own formats.
"""

from __future__ import annotations

import os
from typing import Sequence

from labrun.errors import StoreReadError
from labrun.readback.store import RunList, RunStore
from labrun.readback.stored_run import StoredRun

__all__ = ["RunList", "RunStore", "StoredRun", "open_store", "locate_run"]


def open_store(url: str) -> RunStore:
    """The store at ``url``: a file store folder (``runs``, ``file://runs``) or a MongoDB URL
    (``mongodb://user:pw@host:port/db``). ``store.runs(where=..., sort=...)`` lists its runs and
    ``store.run(7)`` gives one (see docs/browse.md)."""
    from labrun._util.redact import redact_url

    if url.startswith(("mongodb://", "mongodb+srv://")):
        try:
            from labrun.readback.mongo_store import MongoStoreReader
        except ModuleNotFoundError as exc:
            raise StoreReadError(f"reading '{redact_url(url)}' needs the package '{exc.name}': "
                                 f"pip install 'labrun[mongo]'") from None
        return MongoStoreReader(url)
    if url.startswith("mlflow+"):
        try:
            from labrun.readback.mlflow_store import MlflowStoreReader
        except ModuleNotFoundError as exc:
            raise StoreReadError(f"reading '{redact_url(url)}' needs the package '{exc.name}': "
                                 f"pip install 'labrun[mlflow]'") from None
        return MlflowStoreReader(url)
    if "://" in url and not url.startswith("file://"):
        raise StoreReadError(f"cannot read the store '{redact_url(url)}': labrun reads back file stores (a "
                             f"folder or file://DIR), MongoDB (mongodb://...) and MLflow (mlflow+sqlite:///..., "
                             f"mlflow+file:///..., mlflow+http://...)")
    from labrun.readback.file_store import FileStoreReader

    return FileStoreReader(url.removeprefix("file://"))


def locate_run(args: Sequence[str]) -> StoredRun:
    """``RUN_FOLDER`` (``runs/7``) or ``STORE_URL RUN_ID``: the recorded run they name."""
    if len(args) == 1:
        folder = os.path.normpath(args[0])
        store = os.path.dirname(folder) or "."
        if not os.path.isdir(folder) and not os.path.isdir(store):
            from labrun._util.suggest import did_you_mean

            parent = os.path.dirname(store) or "."
            stores = [e.name for e in os.scandir(parent) if e.is_dir()] if os.path.isdir(parent) else []
            raise StoreReadError(f"no store folder '{store}'{did_you_mean(os.path.basename(store), stores)}; name a "
                                 f"run as a file store folder (runs/7) or as STORE_URL RUN_ID")
        return open_store(store).run(os.path.basename(folder))  # an unknown id: the store lists its runs
    if len(args) == 2:
        return open_store(args[0]).run(args[1])
    raise StoreReadError(f"expected RUN_FOLDER or STORE_URL RUN_ID, got {' '.join(args) or 'nothing'}")
