"""The experiment's own code: the main file and every local module it imported, with their md5.

"Local" means under the experiment's base directory and not inside an installed environment (a virtualenv
in the project folder is not source). Modules are looked up when the run starts and again when it ends, so
those imported inside ``main`` are recorded too (Sacred looks once, when the Experiment is created).
"""

from __future__ import annotations

import os
import sys
from typing import Iterable

from labrun._util.redact import looks_secret_file

try:  # CPython's own md5: importing hashlib loads OpenSSL, ~4 ms that every run would pay at its start
    from _md5 import md5
except ImportError:  # an interpreter built without it
    from hashlib import md5

_ENVIRONMENT_PARTS = ("site-packages", "dist-packages", f"{os.sep}.venv{os.sep}", f"{os.sep}venv{os.sep}")


def local_modules(base_dir: str) -> list[str]:
    """Files of imported modules under ``base_dir`` (the main file included when it has one)."""
    base = os.path.abspath(base_dir) + os.sep
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        if not path.startswith(os.sep) or f"{os.sep}." in path:  # most are absolute and normal already: a
            path = os.path.abspath(path)  # process with torch has thousands of modules, normalising each costs
        if path.startswith(base) and not any(part in path for part in _ENVIRONMENT_PARTS):
            found.append(path)
    return sorted(set(found))


def discover(base_dir: str, how: str) -> list[str]:
    """Source files by SETTINGS.DISCOVER_SOURCES: ``imported`` and ``sys`` (the local modules imported so
    far), ``dir`` (every .py file under ``base_dir``, outside hidden folders and environments), ``none``."""
    if how == "none":
        return []
    if how != "dir":
        return [path for path in local_modules(base_dir) if not looks_secret_file(path)]
    found = []
    for folder, subfolders, files in os.walk(base_dir):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in ("venv", "__pycache__")
                         and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))]
        found += [os.path.abspath(os.path.join(folder, f)) for f in files
                  if f.endswith(".py") and not looks_secret_file(f)]
    return sorted(found)


def md5_of(path: str) -> str:
    with open(path, "rb") as f:
        return md5(f.read()).hexdigest()


def md5_text(text: str) -> str:
    """The md5 of ``text`` as UTF-8 (how diffs and untracked files are hashed when recorded)."""
    return md5(text.encode("utf-8", "replace")).hexdigest()


def source_entries(paths: Iterable[str], base_dir: str) -> list[dict[str, str]]:
    """``{"path": relative to base_dir, "abspath", "md5"}`` per readable file, in order."""
    entries = []
    for path in paths:
        try:
            digest = md5_of(path)
        except OSError:
            continue  # deleted since it was imported: nothing to store
        rel = os.path.relpath(path, base_dir)
        entries.append({"path": rel, "abspath": path, "md5": digest})
    return entries
