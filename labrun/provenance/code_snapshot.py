"""A copy of the experiment's code taken when a sweep is handed to a cluster, so that runs waiting in a queue
run the code as it was at submission, not as it is when they start.

The copy has no ``.git``: the git state (commit, branch, diff, untracked files) is read once, when the copy
is made, and written beside the code in :data:`DESCRIPTION_FILE`. A run started from the copy finds it
through ``$LABRUN_CODE_SNAPSHOT`` and records that state as its repositories, as if it had run in the
working tree at submission time (which is what the copy is).
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Iterable

from labrun._util.redact import looks_secret_file
from labrun._util.timestamps import iso, utcnow

DESCRIPTION_FILE = ".labrun-snapshot.json"
_SKIPPED_FOLDERS = {"__pycache__", "node_modules", ".git", ".hg", ".svn", ".venv", "venv"}


def take_snapshot(folder: str, dest: str, exclude: Iterable[str] = ()) -> None:
    """Copy ``folder``'s code into ``dest`` and describe it.

    In a git repository the files are those git knows or would add (tracked, and untracked but not
    ignored), so ignored data, stores and virtualenvs stay behind. Elsewhere only source files (the kinds
    git.SOURCE_SUFFIXES names: code, configs, small text) are copied, outside hidden folders and
    virtualenvs: a folder that git does not describe may hold any amount of data. Nothing under ``exclude``
    (the sweep's stores, its journal and its own folder, where earlier snapshots lie) is copied, and
    secret-looking files (``.env``, keys: docs/reproducibility.md) never are, as for a store.
    """
    from labrun.provenance import git

    folder = os.path.abspath(folder)
    # dest's parent too: earlier snapshots lie beside it, and a copy must never contain another
    excluded = tuple(os.path.abspath(p) + os.sep for p in [*exclude, os.path.dirname(os.path.abspath(dest))])
    root = git.find_root(folder)
    names = None
    if root is not None:
        try:
            names = git.listed_files(folder)
        except (OSError, RuntimeError):  # no git binary, or git failed: walk the folder instead
            pass
    if names is None:
        names = [n for n in _walked_files(folder) if n.lower().endswith(git.SOURCE_SUFFIXES)]
    for rel in names:
        source = os.path.join(folder, rel)
        if (looks_secret_file(rel) or os.path.basename(rel) == ".gitignore" or source.startswith(excluded)
                or not os.path.isfile(source)):
            continue  # .gitignore: engines that upload a folder (Ray) would apply it to the copy
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
    repositories = [git.repository_state(root)] if root is not None else []
    with open(os.path.join(dest, DESCRIPTION_FILE), "w", encoding="utf-8") as f:
        json.dump({"origin": folder, "taken": iso(utcnow()), "repositories": repositories}, f)


def _walked_files(folder: str) -> list[str]:
    names = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIPPED_FOLDERS
                   and not os.path.exists(os.path.join(here, d, "pyvenv.cfg"))]
        names += [os.path.relpath(os.path.join(here, f), folder) for f in files]
    return names


def recorded_repositories(description: str) -> list[dict[str, Any]]:
    """The git state written when the snapshot at ``description`` was taken."""
    with open(description, encoding="utf-8") as f:
        return list(json.load(f).get("repositories") or [])
