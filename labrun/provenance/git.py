"""Git state per repository: remote (credentials removed), commit, branch, dirty flag, diff and untracked files.

The ``git`` command is used directly (``git status`` costs ~5 ms; importing GitPython alone costs ~100 ms).
Without a git binary, GitPython reads the commit, branch and remote from ``.git`` itself; the dirty flag is
then unknown (None). An empty repository and a detached HEAD are ordinary cases, not errors.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from labrun.errors import DirtyRepositoryError
from labrun._util.redact import looks_secret_file, without_credentials

DIFF_CAP = 1 << 20  # bytes of diff plus untracked files stored per repository; the cap is recorded when hit
SOURCE_SUFFIXES = (".py", ".pyx", ".pyi", ".ipynb", ".json", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".txt",
                   ".sh", ".md")  # untracked files of these kinds are stored so a rerun has them
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's id of the empty tree: diff base before any commit


def find_root(path: str) -> str | None:
    """The working tree root of the repository holding ``path``, or None."""
    folder = os.path.dirname(os.path.abspath(path)) if not os.path.isdir(path) else os.path.abspath(path)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def repositories_of(paths: Iterable[str]) -> list[str]:
    """Each repository holding one of ``paths``, once."""
    roots: list[str] = []
    for path in paths:
        root = find_root(path)
        if root is not None and root not in roots:
            roots.append(root)
    return roots


def _start_git(root: str, *args: str) -> Any:
    """A git command started in the background (a subprocess releases the GIL; two overlap)."""
    import subprocess  # only paid for inside a repository

    return subprocess.Popen(["git", "-C", root, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})


def _finish_git(process: Any, check: bool = True) -> str:
    import subprocess

    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"git {process.args[3]} did not answer within 30 s") from None
    if check and process.returncode != 0:
        raise RuntimeError(err.strip() or f"git {process.args[3]} failed")
    return out


def _git(root: str, *args: str, check: bool = True) -> str:
    return _finish_git(_start_git(root, *args), check)


def listed_files(folder: str) -> list[str]:
    """The files under ``folder`` that git tracks or would add (untracked and not ignored), relative to it."""
    out = _git(folder, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return [name for name in out.split("\0") if name]


def repository_state(root: str, cap: int = DIFF_CAP) -> dict[str, Any]:
    """The state of one repository, Sacred's {url, commit, dirty} plus branch, diff and untracked files."""
    state: dict[str, Any] = {"path": root, "url": None, "commit": None, "branch": None, "dirty": None}
    import shutil

    if shutil.which("git") is None:
        state.update(_state_without_binary(root), git_binary=False)
        return state
    remotes = _start_git(root, "config", "--get-regexp", r"^remote\..*\.url$")  # overlaps with status
    try:
        status = _git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=all")
    except BaseException:
        remotes.kill()
        remotes.communicate()
        raise
    untracked = []
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            state["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(maxsplit=2)[2]
            state["branch"] = None if head == "(detached)" else head
        elif line.startswith("? "):
            untracked.append(line[2:])
        elif line and not line.startswith("#"):
            state["dirty"] = True
    state["dirty"] = bool(state["dirty"] or untracked)
    state["url"] = _remote_url(_finish_git(remotes, check=False))
    if state["dirty"]:
        state.update(_changes(root, state["commit"], untracked, cap))
        # Recorded with the run, so that `labrun rerun` can refuse code changed in the store afterwards.
        from labrun.provenance.sources import md5_text

        if state.get("diff"):
            state["diff_md5"] = md5_text(state["diff"])
        state["untracked_md5"] = {rel: md5_text(text) for rel, text in state.get("untracked", {}).items()}
        _tell_about_untracked(root, state)
    return state


_told_untracked: set[str] = set()


def _tell_about_untracked(root: str, state: dict[str, Any]) -> None:
    """Say once per file which untracked files are stored with the run (and which were not, as secrets)."""
    import logging

    stored = [rel for rel in state.get("untracked", {}) if os.path.join(root, rel) not in _told_untracked]
    secret = [rel for rel in state.get("untracked_secret", []) if os.path.join(root, rel) not in _told_untracked]
    _told_untracked.update(os.path.join(root, rel) for rel in stored + secret)
    logger = logging.getLogger("labrun")
    if stored:
        logger.warning("storing untracked file%s with the run: %s (commit %s or add %s to .gitignore; files whose "
                       "names look secret are never stored, $LABRUN_SECRET_FILES adds patterns)",
                       "s" if len(stored) > 1 else "", ", ".join(stored), "them" if len(stored) > 1 else "it",
                       "them" if len(stored) > 1 else "it")
    if secret:
        logger.warning("not storing %s: the name%s like a secret (listed in the run's git record as "
                       "untracked_secret)", ", ".join(secret), "s look" if len(secret) > 1 else " looks")


def _changes(root: str, commit: str | None, untracked: list[str], cap: int) -> dict[str, Any]:
    """The binary diff against HEAD and the untracked source files, within ``cap`` bytes in all."""
    # Plain a/ b/ prefixes and no external diff tool, whatever the user's git config: `labrun rerun` applies it.
    diff = _git(root, "diff", "--binary", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/",
                commit or EMPTY_TREE)
    out: dict[str, Any] = {"diff": diff, "untracked": {}, "untracked_skipped": [], "untracked_secret": []}
    used = len(diff.encode("utf-8", "replace"))
    if used > cap:
        out["diff"] = None
        out["capped"] = {"cap_bytes": cap, "diff_bytes": used}
        used = 0
    for rel in untracked:
        if looks_secret_file(rel):  # never read, never stored: listed by name only
            out["untracked_secret"].append(rel)
            continue
        path = os.path.join(root, rel)
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        if not rel.endswith(SOURCE_SUFFIXES) or used + size > cap:
            out["untracked_skipped"].append(rel)
            continue
        try:
            with open(path, encoding="utf-8") as f:
                out["untracked"][rel] = f.read()
        except (OSError, UnicodeDecodeError):
            out["untracked_skipped"].append(rel)
            continue
        used += size
    if out["untracked_skipped"] and "capped" not in out and any(
            r.endswith(SOURCE_SUFFIXES) for r in out["untracked_skipped"]):
        out["capped"] = {"cap_bytes": cap}
    return out


def _state_without_binary(root: str) -> dict[str, Any]:
    """Commit, branch and remote without a git binary, through GitPython's pure-Python reading of refs
    (loose and packed) and config. Whether the tree is dirty cannot be told this way."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # GitPython refuses to import without git otherwise
    import git

    try:
        repo = git.Repo(root)  # refs and config only: no object is read, so no git process is started
        branch = None if repo.head.is_detached else repo.head.reference.name
        try:
            commit: str | None = git.SymbolicReference.dereference_recursive(repo, "HEAD")
        except ValueError:
            commit = None  # no commit yet
        with repo.config_reader() as config:
            url = config.get_value('remote "origin"', "url", default=None)
    except (git.GitError, OSError, ValueError) as exc:
        return {"error": f"cannot read the repository without a git binary: {exc}"}
    return {"commit": commit, "branch": branch, "url": without_credentials(str(url)) if url else None}


def _remote_url(config_lines: str) -> str | None:
    """origin's URL (else the first remote's) from ``git config --get-regexp`` output, credentials removed."""
    remotes: dict[str, str] = {}
    for line in config_lines.splitlines():
        key, _, url = line.partition(" ")
        remotes.setdefault(key[len("remote."):-len(".url")], url.strip())
    first = remotes.get("origin") or next(iter(remotes.values()), None)
    return without_credentials(first) if first else None


def enforce_clean(repositories: list[dict[str, Any]]) -> None:
    dirty = [r for r in repositories if r.get("dirty")]
    if not dirty:
        return
    changed = [r["path"] for r in dirty if r.get("diff") or r.get("capped")]  # else only untracked files
    untracked = [r["path"] for r in dirty if r["path"] not in changed]
    what = []
    if changed:
        what.append(f"uncommitted changes in {', '.join(changed)} (commit or stash them)")
    if untracked:
        what.append(f"untracked files in {', '.join(untracked)} (commit them or add them to .gitignore)")
    raise DirtyRepositoryError(f"--enforce-clean: {'; '.join(what)}; git status shows them; or run without -e")

