"""Artifact names: relative paths that stay inside their run's folder and never replace the run's own files."""

from __future__ import annotations

import posixpath
import re

from labrun.errors import LabrunError

RESERVED_NAMES = frozenset({"run.json", "config.json", "metrics.json", "metrics.jsonl", "info.json", "cout.txt"})


class ArtifactNameError(LabrunError, ValueError):
    """An artifact name would escape the run's folder or replace one of its files."""


def check_artifact_name(name: str) -> str:
    """The name in normal form (``a/b.png``), or a clear error."""
    if not isinstance(name, str) or not name.strip():
        raise ArtifactNameError("an artifact needs a non-empty name; pass name='model.pt'")
    normal = posixpath.normpath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArtifactNameError(f"artifact name '{name}' is absolute; give a name relative to the run's folder, "
                                f"e.g. name='{posixpath.basename(normal)}'")
    if normal == ".." or normal.startswith("../") or "/../" in f"/{normal}/":
        raise ArtifactNameError(f"artifact name '{name}' leaves the run's folder; use a name without '..', "
                                f"e.g. name='{posixpath.basename(normal)}'")
    if normal in RESERVED_NAMES:
        raise ArtifactNameError(f"artifact name '{name}' is reserved for the run's own record "
                                f"({', '.join(sorted(RESERVED_NAMES))}); choose another, e.g. name='my_{name}'")
    return normal


def check_run_id(run_id: str) -> str:
    """A run id chosen by the user (``--id``): one plain name, so that no store can be led outside itself
    (a folder name in the file store, a document id in MongoDB, a tag in MLflow)."""
    text = str(run_id)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", text) or ".." in text:
        safe = safe_filename(text.replace("..", "")).strip("-") or "run1"
        raise ArtifactNameError(f"--id {text!r} is not a plain name (letters, digits, '.', '_' and '-', starting "
                                f"with a letter or digit, no '..', no '/'); it would name a place outside the "
                                f"store. Use e.g. --id {safe}")
    return text


def numbered(name: str, n: int) -> str:
    """``model.pt`` -> ``model-2.pt``: the name of the n-th artifact given the same name."""
    stem, ext = posixpath.splitext(name)
    return f"{stem}-{n}{ext}"


def safe_filename(name: str) -> str:
    """``name`` as one file or folder name: anything but letters, digits, ``-``, ``.`` and ``_`` becomes ``-``."""
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in name).strip(".") or "run"
