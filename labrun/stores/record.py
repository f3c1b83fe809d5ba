"""The run record's shape, named once: what a run hands every store at its start, and what the stores hold.

These are the keys of Sacred's run.json / MongoDB run document (docs/observers/file.md) plus labrun's own
(``uid``, ``environment``, ``labrun``). Stores may add keys of their own; readers must not assume more.
"""

from __future__ import annotations

from typing import Any, TypedDict


class ExperimentInfo(TypedDict):
    """``record["experiment"]``: what ran, from which files and repositories."""
    name: str
    base_dir: str
    mainfile: str | None
    sources: list[Any]  # [relpath, stored name] pairs once stored; {path, abspath, md5} while a run starts
    dependencies: list[str]  # "package==version"
    repositories: list[dict[str, Any]]  # {path, url, commit, branch, dirty, diff, untracked, ...}


class RunRecord(TypedDict):
    """The record a run starts every store from (``Run.start_record``)."""
    uid: str  # a run's identity across stores and retries (ids differ per store)
    experiment: ExperimentInfo
    command: str
    host: dict[str, Any]  # hostname, os, python_version, cpu, gpus, ...
    meta: dict[str, Any]  # command, options, named_configs, config_updates, comment, priority, sweep, ...
    config: dict[str, Any]
    status: str
    start_time: str  # ISO-8601 UTC
    heartbeat: str
    result: Any
    artifacts: list[Any]
    resources: list[Any]
    info: dict[str, Any]
    environment: dict[str, Any]  # python, distributions, conda, recorded environment variables


class StoredRecord(RunRecord, total=False):
    """A run record as a store holds it after the run (keys a run may not have reached)."""
    stop_time: str
    fail_trace: list[str]
    captured_out: str
    labrun: dict[str, Any]  # {"metrics": per-metric summaries (stores/metric_stats.py), "config": ...}
