"""The Python environment: interpreter, virtualenv/conda prefix, installed distributions, imported packages.

Distributions are read from the ``*.dist-info``/``*.egg-info`` folder names on ``sys.path`` (~2 ms), with
``importlib.metadata`` for a name the folder name does not give; parsing every METADATA file costs ~0.4 s
and a ``pip freeze`` subprocess as much. Conda packages come from the ``conda-meta`` file names, without
running ``conda``.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from labrun.provenance.host import python_version

_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalVM", "ironpython": "IronPython"}
_DIST_FOLDER = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+?)(?:-py[\d.]+)?(?:-[^-]+)?\.(?:dist|egg)-info$")


_SEPARATORS = re.compile(r"[-_.]+")
_INFO_SUFFIXES = (".dist-info", ".egg-info")


def normalise(name: str) -> str:
    """PEP 503 name: case, '-', '_' and '.' do not matter."""
    return _SEPARATORS.sub("-", name).lower()


def installed_distributions() -> dict[str, str]:
    """``{name: version}`` of every distribution importable from sys.path, first on the path wins."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for entry in names:
            match = entry.endswith(_INFO_SUFFIXES) and _DIST_FOLDER.match(entry)
            if not match:
                continue
            name, version = match["name"], match["version"]
            if entry.endswith(".egg-info") and "-" not in entry[: -len(".egg-info")]:
                name, version = _metadata_name_version(os.path.join(folder or ".", entry)) or (name, version)
            key = normalise(name)
            if key not in seen:
                seen.add(key)
                found[name] = version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _metadata_name_version(path: str) -> tuple[str, str] | None:
    from importlib.metadata import PathDistribution
    from pathlib import Path

    meta = PathDistribution(Path(path)).metadata
    return (meta["Name"], meta["Version"]) if meta and meta["Name"] else None


def conda_packages(prefix: str | None) -> dict[str, str]:
    """``{name: version}`` from ``<prefix>/conda-meta/<name>-<version>-<build>.json``."""
    if not prefix:
        return {}
    try:
        names = os.listdir(os.path.join(prefix, "conda-meta"))
    except OSError:
        return {}
    packages = {}
    for file in names:
        if file.endswith(".json") and file.count("-") >= 2:
            name, version, _build = file[:-5].rsplit("-", 2)
            packages[name] = version
    return dict(sorted(packages.items()))


def conda_prefix() -> str | None:
    prefix = os.environ.get("CONDA_PREFIX")
    if prefix and os.path.realpath(sys.prefix).startswith(os.path.realpath(prefix)):
        return prefix
    return sys.prefix if os.path.isdir(os.path.join(sys.prefix, "conda-meta")) else None


def python_environment(distributions: dict[str, str]) -> dict[str, Any]:
    """Interpreter, prefixes and every installed distribution (as ``name==version``, Mongo-safe keys)."""
    conda = conda_prefix()
    return {
        "python": {"version": python_version(), "implementation": _IMPLEMENTATIONS.get(
            sys.implementation.name, sys.implementation.name), "executable": sys.executable},
        "prefix": sys.prefix,
        "virtualenv": sys.prefix if sys.prefix != sys.base_prefix else None,
        "conda_prefix": conda,
        "distributions": [f"{name}=={version}" for name, version in distributions.items()],
        "conda_packages": [f"{name}=={version}" for name, version in conda_packages(conda).items()],
    }


def imported_packages(distributions: dict[str, str], local: set[str]) -> list[str]:
    """Sacred's ``dependencies``: ``name==version`` of the third-party packages the process imported.

    A top-level module is matched to a distribution by name, else by its ``__version__``; the standard
    library and the experiment's own modules are left out.
    """
    by_key = {normalise(name): (name, version) for name, version in distributions.items()}
    stdlib = sys.stdlib_module_names
    owners: dict[str, dict[str, tuple[str, str]]] = {}
    out = {}
    for top in {name.partition(".")[0] for name in list(sys.modules)}:
        if top in stdlib or top.startswith("_") or top in local:
            continue
        module = sys.modules.get(top)
        file = getattr(module, "__file__", None) or ""
        if not file or not ("site-packages" in file or "dist-packages" in file):
            continue
        match = by_key.get(normalise(top)) or _owner(file, top, owners)
        if match:
            out[match[0]] = match[1]
        elif isinstance(version := getattr(module, "__version__", None), str):
            out[top] = version
    return [f"{name}=={version}" for name, version in sorted(out.items(), key=lambda kv: kv[0].lower())]


def _owner(module_file: str, top: str, owners: dict[str, dict[str, tuple[str, str]]]) -> tuple[str, str] | None:
    """The distribution whose ``top_level.txt`` names ``top`` (``yaml`` -> PyYAML), read once per folder."""
    site = module_file
    while os.path.basename(site) not in ("site-packages", "dist-packages"):
        parent = os.path.dirname(site)
        if parent == site:
            return None
        site = parent
    if site not in owners:
        table: dict[str, tuple[str, str]] = {}
        for entry in os.scandir(site):
            match = _DIST_FOLDER.match(entry.name)
            if match:
                for top_name in _top_level_names(entry.path):
                    table.setdefault(top_name, (match["name"], match["version"]))
        owners[site] = table
    return owners[site].get(top)


def _top_level_names(dist_folder: str) -> set[str]:
    """The importable names a distribution installs: its top_level.txt, else the first parts of RECORD."""
    try:
        with open(os.path.join(dist_folder, "top_level.txt")) as f:
            return {line.strip() for line in f if line.strip()}
    except OSError:
        pass
    names = set()
    try:
        with open(os.path.join(dist_folder, "RECORD")) as f:
            for line in f:
                first = line.split(",", 1)[0].split("/", 1)[0]
                if not first.endswith((".dist-info", ".data", ".pth")) and not first.startswith(".."):
                    names.add(first.removesuffix(".py"))
    except OSError:
        pass
    return names
