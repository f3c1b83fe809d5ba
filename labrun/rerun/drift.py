"""What changed between the machine a run was recorded on and this one: Python, packages, git commit, host."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from labrun.provenance.host import python_version


def _versions(entries: list[str]) -> dict[str, str]:
    from labrun.provenance.environment import normalise

    pairs = (entry.partition("==") for entry in entries)
    return {normalise(name): version for name, _, version in pairs}


def environment_drift(record: dict[str, Any]) -> list[str]:
    """One line per difference; empty when nothing that is recorded changed."""
    from labrun.provenance.environment import installed_distributions

    lines = []
    stored_env = record.get("environment") or {}
    old_python = (stored_env.get("python") or {}).get("version") or record.get("host", {}).get("python_version")
    if old_python and old_python != python_version():
        lines.append(f"python: {old_python} -> {python_version()}")
    if "distributions" in stored_env:
        old = _versions(stored_env["distributions"])
        new = _versions([f"{n}=={v}" for n, v in installed_distributions().items()])
        changed = [f"{name} {old[name]} -> {new[name]}" for name in sorted(old.keys() & new.keys())
                   if old[name] != new[name]]
        added = [f"{name}=={new[name]}" for name in sorted(new.keys() - old.keys())]
        removed = [f"{name}=={old[name]}" for name in sorted(old.keys() - new.keys())]
        for label, items in (("packages changed", changed), ("packages added", added),
                             ("packages removed", removed)):
            if items:
                lines.append(f"{label}: {', '.join(items)}")
    for repo in record.get("experiment", {}).get("repositories", []):
        now = _head(repo.get("path"))
        if repo.get("commit") and now != repo["commit"]:
            lines.append(f"git {repo['path']}: commit {repo['commit'][:12]} -> "
                         f"{now[:12] if now else '(repository gone)'}")
    old_host = record.get("host", {}).get("hostname")
    if old_host and old_host != os.uname().nodename:
        lines.append(f"host: {old_host} -> {os.uname().nodename}")
    return lines


def _head(path: str | None) -> str | None:
    if not path or not os.path.isdir(path):
        return None
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "--verify", "-q", "HEAD"], capture_output=True,
                             text=True, timeout=30)
    except OSError:
        return None
    return out.stdout.strip() or None
