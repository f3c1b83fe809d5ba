"""Project defaults for observers, so that a team's every command records without repeating ``-F``/``-m``:

- ``LABRUN_OBSERVERS="file://runs mongodb://host/db"`` (URLs separated by spaces or commas), else
- ``observers = ["file://runs"]`` in the ``[tool.labrun]`` table of the nearest pyproject.toml above the
  experiment's folder (relative folders there are relative to that pyproject.toml).

Both apply only when neither the command line nor the script adds an observer, and never with ``-u``.
"""

from __future__ import annotations

import os
import re

from labrun._util.env_vars import OBSERVERS_ENV
from labrun.errors import LabrunError

_RELATIVE = re.compile(r"^(file|tensorboard)://(?!/)")  # schemes whose URL is a folder, written relative


def default_observer_urls(base_dir: str) -> list[str]:
    """The default observer URLs (none when neither default is set)."""
    text = os.environ.get(OBSERVERS_ENV, "").strip()
    if text:
        return [url for url in re.split(r"[\s,]+", text) if url]
    pyproject = _nearest_pyproject(base_dir)
    if pyproject is None:
        return []
    folder = os.path.dirname(pyproject)
    return [_anchored(url, folder) for url in _pyproject_observers(pyproject)]


def _nearest_pyproject(base_dir: str) -> str | None:
    folder = os.path.abspath(base_dir)
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _pyproject_observers(path: str) -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10: tomli, when installed, reads the same format
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return []
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f).get("tool", {}).get("labrun", {})
    except (OSError, ValueError) as exc:
        raise LabrunError(f"cannot read [tool.labrun] in {path}: {exc}; fix the file") from None
    observers = table.get("observers", [])
    if isinstance(observers, str):
        observers = [observers]
    if not isinstance(observers, list) or not all(isinstance(url, str) for url in observers):
        raise LabrunError(f"[tool.labrun] observers in {path} must be a list of URLs, e.g. "
                          f'observers = ["file://runs"]')
    return observers


def _anchored(url: str, folder: str) -> str:
    """``file://runs`` from a pyproject.toml means the runs folder beside it, wherever the script starts."""
    match = _RELATIVE.match(url)
    if match:
        return f"{match.group(1)}://{os.path.join(folder, url[match.end():])}"
    if "://" not in url:  # a plain folder: a file store
        return f"file://{os.path.join(folder, url)}"
    return url
