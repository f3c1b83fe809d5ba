"""Gathering a run's provenance once, at its start, with the slow parts in parallel.

Three threads: sources and git (subprocesses, which release the GIL), the Python environment (folder
scans), and the host (/proc, sysconf, NVML). Each part that fails is recorded as an error string instead of
failing the run; ``--enforce-clean`` is the one check that stops a run.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Iterable

from labrun._util.env_vars import CODE_SNAPSHOT_ENV
from labrun.provenance import environment, git, host, sources

logger = logging.getLogger("labrun")


def _in_parallel(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    results: dict[str, Any] = {}

    def work(name: str, job: Callable[[], Any]) -> None:
        try:
            results[name] = job()
        except Exception as exc:  # provenance is best effort: record what went wrong, run anyway
            logger.warning("could not record the run's %s: %s", name, exc)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}

    threads = [threading.Thread(target=work, args=item, name=f"labrun-provenance-{item[0]}", daemon=True)
               for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def gather_provenance(base_dir: str, mainfile: str | None, extra_sources: Iterable[str], save_git: bool,
                       record_env: Iterable[str] = ()) -> dict[str, Any]:
    """``{"sources", "repositories", "dependencies", "environment", "host"}`` for the run record."""
    from labrun.settings import SETTINGS

    discovered = sources.discover(base_dir, SETTINGS.DISCOVER_SOURCES)
    paths = sorted(set(discovered) | set(extra_sources) | ({mainfile} if mainfile else set()))
    find_dependencies = SETTINGS.DISCOVER_DEPENDENCIES

    def code() -> dict[str, Any]:
        entries = sources.source_entries(paths, base_dir)
        snapshot = os.environ.get(CODE_SNAPSHOT_ENV)
        if snapshot:  # a launched run: its code is a copy with no .git; the state was read when it was copied
            from labrun.provenance.code_snapshot import recorded_repositories

            return {"sources": entries, "repositories": recorded_repositories(snapshot) if save_git else []}
        roots = git.repositories_of(paths or [base_dir]) if save_git else []
        return {"sources": entries, "repositories": [git.repository_state(root) for root in roots]}

    def python() -> dict[str, Any]:
        dists = environment.installed_distributions()
        local = {os.path.splitext(os.path.relpath(p, base_dir))[0].split(os.sep)[0] for p in paths}
        return {"environment": environment.python_environment(dists),
                "dependencies": [] if find_dependencies == "none" else
                [f"{name}=={version}" for name, version in sorted(dists.items())] if find_dependencies == "sys"
                else environment.imported_packages(dists, local)}

    parts = _in_parallel({"code": code, "python environment": python,
                          "host": lambda: host.host_info(record_env)})
    code_part, python_part = parts["code"], parts["python environment"]
    return {
        "sources": code_part.get("sources", []),
        "repositories": code_part.get("repositories", []),
        "dependencies": python_part.get("dependencies", []),
        "environment": python_part.get("environment", python_part),
        "host": parts["host"],
    }
