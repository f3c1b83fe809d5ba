"""Writing the exact code of a recorded run into a fresh folder, never touching the user's working tree.

From the recorded commit (``git archive``) plus the recorded diff and untracked files when the run's
repository still has that commit; else from the source snapshot the store kept. Either way, the base_dir
of the original run maps to a folder inside the new one.
"""

from __future__ import annotations

import os
import subprocess
from hashlib import md5
import tarfile
from dataclasses import dataclass
from typing import Any

from labrun.errors import RerunError
from labrun.provenance.sources import md5_text
from labrun.readback import StoredRun


@dataclass
class Materialised:
    """Where the code was written: ``base_dir`` stands for the original base_dir, ``root`` goes on PYTHONPATH."""

    root: str
    base_dir: str
    origin: str  # how it was made, for the user
    warnings: list[str]

    def translate(self, original_base_dir: str, path: str) -> str | None:
        """The copy of ``path`` (a folder of the original run) inside the materialised code, if it is there."""
        rel = os.path.relpath(path, original_base_dir)
        candidate = os.path.normpath(os.path.join(self.base_dir, rel))
        inside = candidate == self.root or candidate.startswith(self.root + os.sep)
        return candidate if inside and os.path.isdir(candidate) else None


def main_repository(run: StoredRun) -> dict[str, Any] | None:
    """The recorded repository holding the experiment's base_dir."""
    base_dir = run.record["experiment"]["base_dir"]
    for repo in run.record["experiment"].get("repositories", []):
        path = repo.get("path")
        if path and (base_dir == path or base_dir.startswith(path.rstrip(os.sep) + os.sep)):
            return repo
    return None


def has_commit(repo: dict[str, Any]) -> bool:
    if not repo.get("commit") or not os.path.isdir(repo.get("path") or ""):
        return False
    try:
        out = subprocess.run(["git", "-C", repo["path"], "cat-file", "-e", f"{repo['commit']}^{{commit}}"],
                             capture_output=True, timeout=30)
    except OSError:  # no git binary
        return False
    return out.returncode == 0


def materialise(run: StoredRun, into: str) -> Materialised:
    """Write the run's code under ``into``; RerunError when neither its commit nor its sources are available."""
    base_dir = run.record["experiment"]["base_dir"]
    repo = main_repository(run)
    if repo is not None and has_commit(repo):
        root = os.path.join(into, os.path.basename(repo["path"].rstrip(os.sep)) or "repo")
        _extract_commit(repo, root)
        result = Materialised(root, os.path.join(root, os.path.relpath(base_dir, repo["path"])),
                              f"commit {repo['commit'][:12]} of {repo['path']}", [])
        if not repo.get("dirty"):
            return result
        if repo.get("capped"):
            _write_sources(run, result)
            result.origin += " with the stored sources over it"
            result.warnings.append("the uncommitted changes were over the size cap when the run was recorded; "
                                   "the stored source files are used over the commit, other changed files are "
                                   "as committed")
            return result
        _apply_changes(repo, root)
        result.origin += " plus the recorded uncommitted changes"
        return result
    if run.sources:
        root = os.path.join(into, os.path.basename(base_dir.rstrip(os.sep)) or "code")
        result = Materialised(root, root, "the source files stored with the run", [])
        if repo is not None:
            result.warnings.append(f"commit {str(repo.get('commit'))[:12]} is not in {repo.get('path')}: only the "
                                   f"stored source files are there, not the rest of the repository")
        _write_sources(run, result)
        return result
    where = (f"commit {str(repo.get('commit'))[:12]} is not in the repository {repo.get('path')} (git fetch it)"
             if repo else "the run was not in a git repository")
    raise RerunError(f"run {run.run_id} cannot be re-created: its sources were not stored and {where}; "
                     f"use --here to run the current working tree instead")


def _extract_commit(repo: dict[str, Any], root: str) -> None:
    os.makedirs(root, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", repo["path"], "archive", "--format=tar", repo["commit"]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert archive.stdout is not None
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        if hasattr(tarfile, "data_filter"):  # refuses links and paths out of the folder
            tar.extractall(root, filter="data")
        else:  # pragma: no cover - Python < 3.10.12
            tar.extractall(root)
    if archive.wait() != 0:
        why = archive.stderr.read().decode(errors="replace").strip() if archive.stderr else ""
        raise RerunError(f"git archive of {repo['commit']} in {repo['path']} failed: {why}")


def _apply_changes(repo: dict[str, Any], root: str) -> None:
    """The recorded diff applied, then the untracked files written, as they were when the run started."""
    if repo.get("diff"):
        _verify(f"the recorded diff of {repo['path']}", md5_text(repo["diff"]), repo.get("diff_md5"))
        # Outside any repository (the ceiling stops git from finding one above), `git apply` patches files.
        env = {**os.environ, "GIT_CEILING_DIRECTORIES": os.path.dirname(root)}
        applied = subprocess.run(["git", "apply", "--binary", "--whitespace=nowarn", "-"], cwd=root, env=env,
                                 input=repo["diff"].encode("utf-8"), capture_output=True, timeout=120)
        if applied.returncode != 0:
            raise RerunError(f"the recorded diff does not apply to commit {repo['commit'][:12]}: "
                             f"{applied.stderr.decode(errors='replace').strip()}")
    recorded = repo.get("untracked_md5") or {}
    for rel, text in (repo.get("untracked") or {}).items():
        _verify(f"untracked file {rel}", md5_text(text), recorded.get(rel))
        _write_inside(root, rel, text.encode("utf-8"))


def _verify(what: str, actual: str, recorded: str | None) -> None:
    """Refuse code whose content no longer matches the hash recorded with the run: the store was changed
    after the run, and `labrun rerun` must not execute what the run did not run."""
    if recorded is None:
        return  # recorded before labrun kept these hashes: nothing to compare with
    if actual != recorded:
        raise RerunError(f"{what} was changed in the store after the run (md5 {actual}, recorded {recorded}); "
                         f"refusing to run it. Rerun only stores you trust, or use --here to run your own "
                         f"working tree")


def _write_sources(run: StoredRun, target: Materialised) -> None:
    hashes = run.source_hashes
    for rel, stored in run.sources.items():
        with open(stored, "rb") as f:
            data = f.read()
        _verify(f"source file {rel}", md5(data).hexdigest(), hashes.get(rel))
        if not _write_inside(target.base_dir, rel, data, target.root):
            target.warnings.append(f"source {rel} lies outside the experiment's folder and was left out")


def _write_inside(folder: str, rel: str, data: bytes, root: str | None = None) -> bool:
    """Write ``data`` to ``folder/rel`` unless that lands outside ``root`` (default ``folder``)."""
    root = os.path.abspath(root or folder)
    path = os.path.abspath(os.path.join(folder, rel))
    if os.path.isabs(rel) or not path.startswith(root + os.sep):
        return False
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return True
