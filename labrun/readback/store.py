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
    """Base of the store readers: ``all_runs()`` is theirs, the selection is here."""

    label: str
    url: str
    observer_args: list[str]

    def all_runs(self) -> list[StoredRun]:
        raise NotImplementedError

    def run(self, run_id: Any) -> StoredRun:
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

