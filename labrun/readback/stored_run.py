"""A recorded run as read back from a store, whatever the store: what ``labrun ls/show/compare/plot`` and
``labrun rerun`` show and use, and what ``labrun.open_store(...).run(7)`` returns.

The record (run.json or the run document) and the config are read at once; everything else (metrics,
info, output, artifacts, sources) when first asked for, so listing many runs reads little.
"""

from __future__ import annotations

import datetime as _dt
import functools
import time
from typing import IO, Any, Iterator, Mapping

from labrun.config.values import plain
from labrun.stores.metric_stats import RECORD_KEY

DIED = "DIED"
MISSED_BEATS = 3  # a RUNNING run whose heartbeat is older than this many beat intervals has died


def effective_status(record: dict[str, Any], now: float | None = None) -> str:
    """The recorded status, except DIED for a run recorded as RUNNING whose last heartbeat is older than
    three beat intervals (killed without a chance to say so; Omniboard calls it "probably dead")."""
    status = record.get("status") or "UNKNOWN"
    if status != "RUNNING":
        return status
    from labrun._util.timestamps import posix

    beat = record.get("heartbeat") or record.get("start_time")
    interval = (record.get("meta") or {}).get("options", {}).get("--beat-interval") or 10.0
    try:
        age = (time.time() if now is None else now) - posix(str(beat))
    except (TypeError, ValueError):
        return status
    return DIED if interval and age > MISSED_BEATS * float(interval) else status


class Metric:
    """One metric's points: ``steps``, ``values`` and ``timestamps`` (POSIX seconds), numpy arrays when
    numpy is installed, else lists."""

    def __init__(self, name: str, steps: Any, values: Any, timestamps: Any):
        self.name = name
        self.steps, self.values, self.timestamps = _arrays(steps, values, timestamps)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        last = float(self.values[-1]) if len(self.values) else None
        return f"Metric({self.name!r}, {len(self)} points, last {last!r})"


class Metrics(Mapping[str, Metric]):
    """``run.metrics["loss"]``: read from the store on first access, all metrics of the run at once."""

    def __init__(self, load: Any):
        self._load = load
        self._data: dict[str, Metric] | None = None

    def _all(self) -> dict[str, Metric]:
        if self._data is None:
            self._data = {}
            for name, series in self._load().items():
                stamps = [_posix(t) for t in series["timestamps"]]
                self._data[name] = Metric(name, series["steps"], series["values"], stamps)
        return self._data

    def __getitem__(self, name: str) -> Metric:
        data = self._all()
        if name not in data:
            from labrun._util.suggest import did_you_mean

            raise KeyError(f"no metric '{name}'{did_you_mean(name, data)}; metrics: {', '.join(data) or 'none'}")
        return data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class StoredRun:
    """One recorded run. ``store`` names its store for people (credentials redacted); ``store_url`` opens it
    again (credentials included: never print it); ``observer_args`` are the command-line options that
    record a new run into the same store."""

    def __init__(self, reader: Any, run_id: Any, record: dict[str, Any], config: dict[str, Any] | None = None,
                 complete: bool = True):
        """``record`` is the whole run record, or with ``complete=False`` its summary (``summarise``): what
        listing needs; the whole record is then read when first asked for."""
        self.reader = reader
        self.id = self.run_id = run_id
        self.summary = record if not complete else summarise(record)
        self._record = record if complete else None
        self._config = config
        self._sources: dict[str, str] | None = None
        self._info: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<run {self.id} of {self.experiment!r} in {self.store}: {self.status}>"

    @functools.cached_property
    def metrics(self) -> Metrics:
        """``run.metrics["loss"].values``: every point, read from the store on first access."""
        return Metrics(lambda: self.reader.metrics(self.id))

    # -- where it is -----------------------------------------------------------------------------------------
    @property
    def store(self) -> str:
        return self.reader.label

    @property
    def store_url(self) -> str:
        return self.reader.url

    @property
    def observer_args(self) -> list[str]:
        return self.reader.observer_args

    # -- the record ------------------------------------------------------------------------------------------
    @property
    def record(self) -> dict[str, Any]:
        """The whole run record (run.json, or the run document without its config)."""
        if self._record is None:
            self._record = self.reader.record(self.id)
        return self._record

    @property
    def uid(self) -> str | None:
        return self.summary.get("uid")

    @property
    def experiment(self) -> str | None:
        """The experiment's name (the whole ``experiment`` entry is ``record["experiment"]``)."""
        return (self.summary.get("experiment") or {}).get("name")

    @property
    def status(self) -> str:
        """The recorded status, or DIED for a RUNNING run whose heartbeat stopped (see effective_status)."""
        return effective_status(self.summary)

    @property
    def config(self) -> dict[str, Any]:
        if self._config is None:
            self._config = self.reader.config(self.id)
        return self._config

    @property
    def info(self) -> dict[str, Any]:
        """The run's info, with Sacred's jsonpickle tags taken off (``record["info"]`` keeps them)."""
        if self._info is None:
            self._info = plain(self.reader.info(self.id, self.summary))
        return self._info

    @property
    def result(self) -> Any:
        """The main function's return value; numpy values and tuples come back as numbers and lists."""
        return plain(self.summary.get("result"))

    @property
    def meta(self) -> dict[str, Any]:
        return self.summary.get("meta") or {}

    @property
    def host(self) -> dict[str, Any]:
        return self.summary.get("host") or {}

    @functools.cached_property
    def start_time(self) -> _dt.datetime | None:
        return _moment(self.summary.get("start_time"))

    @functools.cached_property
    def stop_time(self) -> _dt.datetime | None:
        return _moment(self.summary.get("stop_time"))

    @functools.cached_property
    def heartbeat(self) -> _dt.datetime | None:
        return _moment(self.summary.get("heartbeat"))

    @property
    def duration(self) -> float | None:
        """Seconds from start to stop (to the last heartbeat while it runs or after it died)."""
        end = self.stop_time or self.heartbeat
        return (end - self.start_time).total_seconds() if end and self.start_time else None

    @property
    def metric_stats(self) -> dict[str, dict[str, Any]]:
        """``{name: {"count", "first", "last", "min", "max", "last_step"}}``, kept by the store as the run went
        on; computed from the points for runs recorded before stores kept it."""
        from labrun.stores.metric_stats import of

        kept = (self.summary.get(RECORD_KEY) or {}).get("metrics")
        # a file store fills min and max when the run ends: a running (or killed) run's come from its points
        unfinished = self.summary.get("status") == "RUNNING" and kept is not None and \
            any(s.get("min") is None and s.get("count") for s in kept.values())
        if kept is None or unfinished:
            kept = of(self.reader.metrics(self.id))
            self.summary[RECORD_KEY] = {"metrics": kept}
        return kept

    @property
    def final_metrics(self) -> dict[str, float]:
        """Each metric's last value."""
        return {name: s["last"] for name, s in self.metric_stats.items() if s.get("last") is not None}

    # -- files -----------------------------------------------------------------------------------------------
    @property
    def sources(self) -> dict[str, str]:
        """Each source file's path (relative to the experiment's base_dir) -> a readable copy."""
        if self._sources is None:
            self._sources = self.reader.source_files(self.id, self.record)
        return self._sources

    @property
    def source_hashes(self) -> dict[str, str]:
        """The md5 recorded for each stored source file when the run stored it (path -> md5)."""
        return self.reader.source_hashes(self.id, self.record)

    @property
    def artifacts(self) -> list[str]:
        """The names of the run's artifacts."""
        # MongoDB lists an artifact with a folder under a flat name for Omniboard, its real name in "path"
        return [a.get("path") or a["name"] if isinstance(a, dict) else a for a in self.summary.get("artifacts") or []]

    def artifact_path(self, name: str) -> str:
        """A local path of the artifact ``name`` (MongoDB's are downloaded once, to a temporary folder)."""
        if name not in self.artifacts:
            from labrun.errors import StoreReadError
            from labrun._util.suggest import did_you_mean

            raise StoreReadError(f"run {self.id} has no artifact '{name}'{did_you_mean(name, self.artifacts)}; "
                                 f"its artifacts: {', '.join(self.artifacts) or 'none'}")
        return self.reader.artifact_path(self.id, name)

    def open_artifact(self, name: str, mode: str = "rb") -> IO[Any]:
        """Open an artifact for reading: ``pickle.load(run.open_artifact("model.pkl"))``."""
        if any(c in mode for c in "wax+"):
            raise ValueError("artifacts are opened for reading only")
        return open(self.artifact_path(name), mode)

    @property
    def output(self) -> str:
        """What the run printed (its captured output)."""
        return self.reader.output(self.id)


def summarise(record: dict[str, Any]) -> dict[str, Any]:
    """What listing, filtering and sorting runs read of a record: everything but the bulky parts (the
    environment, sources, diffs, resources, failure trace), which stay in the store until asked for."""
    experiment = record.get("experiment") or {}
    repositories = [{k: v for k, v in repo.items() if k in ("path", "commit", "branch", "dirty", "url")}
                    for repo in experiment.get("repositories") or [] if isinstance(repo, dict)]
    summary = {k: record.get(k) for k in ("uid", "command", "host", "meta", "status", "start_time", "stop_time",
                                          "heartbeat", "result", "artifacts", "info", RECORD_KEY) if k in record}
    summary["experiment"] = {"name": experiment.get("name"), "mainfile": experiment.get("mainfile"),
                             "base_dir": experiment.get("base_dir"), "repositories": repositories}
    return summary


def _moment(value: Any) -> _dt.datetime | None:
    """Sacred's naive UTC ISO text (or a BSON date) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=_dt.timezone.utc) if value.tzinfo is None else value
    text = str(value)
    try:  # naive text is UTC; parsing it with its zone is ~6x faster than replace() afterwards
        zoned = text.endswith("Z") or (len(text) > 19 and text[-6] in "+-" and text[-3] == ":")
        return _dt.datetime.fromisoformat(text if zoned else text + "+00:00")
    except ValueError:
        return None


def _posix(stamp: Any) -> float:
    """A timestamp as POSIX seconds: Sacred's ISO text, a BSON date (naive UTC) or seconds already."""
    if isinstance(stamp, (int, float)):
        return float(stamp)
    moment = _moment(stamp)
    return moment.timestamp() if moment else float("nan")


def _arrays(steps: Any, values: Any, stamps: Any) -> tuple[Any, Any, Any]:
    try:
        import numpy
    except ImportError:
        return [int(s) for s in steps], list(values), list(stamps)
    return (numpy.asarray(steps, dtype=float).astype(numpy.int64), numpy.asarray(values, dtype=float),
            numpy.asarray(stamps, dtype=float))
