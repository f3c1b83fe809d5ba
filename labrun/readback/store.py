"""What every store reader offers: ``runs(where=..., sort=..., limit=...)`` and ``run(id)``, and the list of
runs ``runs`` returns (``to_dataframe()`` for notebooks)."""

from __future__ import annotations

import contextlib
import gc
from typing import Any, Iterator, Sequence

from labrun.readback.query import check_keys, flatten, matcher, sort_runs, value_of
from labrun.readback.stored_run import StoredRun

DEFAULT_SORT = "-start"  # newest first


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while thousands of run records are read and kept: each collection
    would walk all of them again (it more than doubled `labrun ls` on 10,000 runs). Reference counting
    still frees everything as usual; records hold no cycles."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class RunList(list):
    """Runs as a list; ``to_dataframe()`` gives one row per run, like ``mlflow.search_runs``."""

    def to_dataframe(self) -> Any:
        """Columns: id, experiment, status, start_time, stop_time, duration, host, commit, result (when
        it is a number or text), ``config.ENTRY`` for every config entry, and ``metrics.NAME`` (last value),
        ``metrics.NAME.min``/``.max``/``.count`` for every metric. Needs pandas."""
        try:
            import pandas
        except ImportError:
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from None
        rows = []
        for run in self:
            row: dict[str, Any] = {"id": run.id, "experiment": run.experiment, "status": run.status,
                                   "start_time": run.start_time, "stop_time": run.stop_time,
                                   "duration": run.duration, "host": run.host.get("hostname"),
                                   "commit": value_of(run, "commit") or None}
            if isinstance(run.result, (int, float, str)) or run.result is None:
                row["result"] = run.result
            row.update({f"config.{k}": v for k, v in flatten(run.config).items()})
            for name, stats in run.metric_stats.items():
                row[f"metrics.{name}"] = stats.get("last")
                for stat in ("min", "max", "count"):
                    row[f"metrics.{name}.{stat}"] = stats.get(stat)
            rows.append(row)
        return pandas.DataFrame(rows)


class RunStore:
    """Base of the store readers (file store, MongoDB). Each reads its own layout through the methods below;
    the selection (``runs``) is here. ``label`` names the store for people (credentials redacted), ``url``
    opens it again, ``observer_args`` record a new run into it (``-F DIR``, ``-m URL``)."""

    label: str
    url: str
    observer_args: list[str]

    def all_runs(self) -> list[StoredRun]:
        """Every run, oldest first, each with a summary of its record and its config."""
        raise NotImplementedError

    def run(self, run_id: Any) -> StoredRun:
        """One run, with its whole record; a clear error naming the runs there are when it is not there."""
        raise NotImplementedError

    def find_uid(self, uid: str) -> StoredRun | None:
        """The run recorded with ``uid``, or None."""
        raise NotImplementedError

    def records(self, experiment: str | None = None, command: str | None = None) -> list[dict[str, Any]]:
        """The summaries of the run records (``stored_run.summarise``), with ``id`` and ``config``, of
        ``experiment`` and ``command``, oldest first."""
        raise NotImplementedError

    def record(self, run_id: Any) -> dict[str, Any]:
        """A run's whole record."""
        raise NotImplementedError

    def config(self, run_id: Any) -> dict[str, Any]:
        raise NotImplementedError

    def info(self, run_id: Any, record: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def metrics(self, run_id: Any) -> dict[str, dict[str, Any]]:
        """Every point of every metric: ``{name: {"steps", "values", "timestamps"}}``."""
        raise NotImplementedError

    def final_metrics(self, run_id: Any) -> dict[str, float]:
        """Each metric's last value."""
        raise NotImplementedError

    def output(self, run_id: Any) -> str:
        raise NotImplementedError

    def artifact_path(self, run_id: Any, name: str) -> str:
        raise NotImplementedError

    def artifact_size(self, run_id: Any, name: str) -> int | None:
        raise NotImplementedError

    def resource_size(self, entry: list[str]) -> int | None:
        raise NotImplementedError

    def source_files(self, run_id: Any, record: dict[str, Any]) -> dict[str, str]:
        """Each stored source file's path (relative to base_dir) -> a readable local copy."""
        raise NotImplementedError

    def source_hashes(self, run_id: Any, record: dict[str, Any]) -> dict[str, str]:
        """Each stored source file's path -> the md5 recorded when it was stored."""
        raise NotImplementedError

    def runs(self, where: Any = None, sort: str | Sequence[str] | None = DEFAULT_SORT,
             limit: int | None = None) -> RunList:
        """The runs for which ``where`` holds (a filter text like ``"config.lr<0.1"``, a list of them, a dict
        of equalities, or a function), in ``sort`` order (keys, ``-`` for descending; newest first by
        default), at most ``limit``. A key no run has is an error with suggestions."""
        with no_cyclic_gc():
            return self._select(where, sort, limit)

    def _select(self, where: Any, sort: str | Sequence[str] | None, limit: int | None) -> RunList:
        runs = self.all_runs()
        test, keys = matcher(where)
        sorts = [sort] if isinstance(sort, str) else list(sort or [])
        check_keys(keys + [s.lstrip("-+") for s in sorts], runs)
        selected = sort_runs([run for run in runs if test(run)][::-1], sorts)  # ties: the newest id first
        return RunList(selected[:limit] if limit else selected)

    def close(self) -> None:
        """Release connections (a no-op for file stores)."""

