"""What an observer implements. Observers are fed from the run's journal by their own delivery thread.

Each method receives one journal event's content. A method that raises is retried later with the same
content (the journal keeps it), so methods should tolerate a repeat of the call that failed.
"""

from __future__ import annotations

import datetime
from typing import Any
from labrun.stores.record import RunRecord


class RunObserver:
    """Base class: every method is optional; the default does nothing."""

    #: Observers with higher priority are asked first for the run's id.
    priority: int = 0
    #: False for a store that keeps runs under ids of its own and never names labrun's run (MLflow): the run
    #: does not wait for it to start.
    names_runs: bool = True

    @property
    def name(self) -> str:
        return type(self).__name__

    def run_location(self, run_id: Any) -> str | None:
        """Where a user finds the run (``runs/7``), printed once when it starts; None when there is no such
        short form."""
        return None

    def started(self, record: RunRecord, _id: Any) -> Any:
        """A run started (``record`` is the run record). Return the id used, or None; ``_id`` is the id
        chosen by a higher-priority observer (or ``--id``), to be used when given.

        The source files arrive just after, through ``sources``, so naming the run waits for no copying.
        """
        return _id

    def find_run(self, record: RunRecord) -> Any:
        """The id under which this store holds the run with ``record["uid"]``, or None if it holds none.
        ``labrun sync`` asks before replaying a killed run's journal; a store that cannot tell keeps this."""
        raise NotImplementedError(f"{self.name} cannot look a run up by its uid")

    def resumed(self, record: RunRecord, _id: Any) -> None:
        """Go on recording a run that this store named ``_id`` in another process (``labrun sync`` replays
        the rest of its journal next). Replayed events may include some that reached the store before the
        failure: a store skips metric points not newer than its newest (``metric_codec.first_unseen``) and
        the output of beats it has. A store that cannot be resumed keeps this default."""
        raise NotImplementedError(f"{self.name} cannot go on recording a run started in another process")

    def sources(self, sources: list[dict[str, str]]) -> None:
        """Source files as ``{"path": relative to base_dir, "md5", "stored": the journal's copy}``: those found
        at the start, then at the end those first imported during the run. Each store keeps them its own way."""

    def metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        """New points: ``{name: {"steps": ..., "values": ..., "timestamps": ...}}``, each an ``array('d')``;
        steps are whole numbers, timestamps POSIX seconds."""

    def heartbeat(self, info: dict[str, Any], output: str, result: Any, beat_time: str) -> None:
        """The run is alive: its info, the output produced since the last beat, the result so far."""

    def artifact(self, name: str, path: str, metadata: Any, content_type: str | None) -> None:
        """A file to store under ``name``; ``path`` is the journal's copy."""

    def resource(self, path: str, md5: str, stored_path: str) -> None:
        """A file the run read; ``stored_path`` is the journal's copy."""

    def store_ids(self, ids: list[dict[str, Any]]) -> None:
        """The stores numbered the run differently: ``ids`` lists each observer's name, URL (credentials
        redacted) and the id it stored the run under. A store keeps the list with the run, so a reader can
        match the run across stores (the run's ``uid`` is the same in all)."""

    def ended(self, status: str, stop_time: str, result: Any, fail_trace: list[str] | None,
              info: dict[str, Any], output: str) -> None:
        """The run ended with ``status``; ``output`` is what was printed since the last beat."""


SACRED_EVENT_METHODS = ("queued_event", "started_event", "heartbeat_event", "completed_event", "interrupted_event",
                        "failed_event", "resource_event", "artifact_event", "log_metrics")


class SacredRunObserver:
    """Sacred's ``RunObserver`` (``from labrun.observers import RunObserver``): subclass it and override
    the events you need, with Sacred's arguments. labrun feeds it through ``SacredObserverAdapter`` from the
    run's journal, in the background. (labrun's own observer interface is ``labrun.observer.RunObserver``.)"""

    priority = 0

    def queued_event(self, ex_info: dict[str, Any], command: str, host_info: dict[str, Any],
                     queue_time: datetime.datetime, config: dict[str, Any], meta_info: dict[str, Any],
                     _id: Any) -> Any:
        return None

    def started_event(self, ex_info: dict[str, Any], command: str, host_info: dict[str, Any],
                      start_time: datetime.datetime, config: dict[str, Any], meta_info: dict[str, Any],
                      _id: Any) -> Any:
        return None

    def heartbeat_event(self, info: dict[str, Any], captured_out: str, beat_time: datetime.datetime,
                        result: Any) -> None:
        pass

    def completed_event(self, stop_time: datetime.datetime, result: Any) -> None:
        pass

    def interrupted_event(self, interrupt_time: datetime.datetime, status: str) -> None:
        pass

    def failed_event(self, fail_time: datetime.datetime, fail_trace: list[str]) -> None:
        pass

    def resource_event(self, filename: str) -> None:
        pass

    def artifact_event(self, name: str, filename: str, metadata: Any = None, content_type: str | None = None) -> None:
        pass

    def log_metrics(self, metrics_by_name: dict[str, Any], info: dict[str, Any]) -> None:
        pass

    def join(self) -> None:
        pass


def speaks_sacred(observer: Any) -> bool:
    """An observer written for Sacred: it defines Sacred's event methods and none of labrun's."""
    own = type(observer)
    defines_sacred = any(callable(getattr(observer, name, None)) for name in SACRED_EVENT_METHODS)
    overrides_labrun = any(getattr(own, name, None) is not getattr(RunObserver, name, None)
                           for name in ("started", "heartbeat", "ended", "metrics"))
    return defines_sacred and not (isinstance(observer, RunObserver) and overrides_labrun)


class SacredObserverAdapter(RunObserver):
    """Feeds an observer written for Sacred (``started_event``, ``heartbeat_event``, ``completed_event``, ...)
    from labrun's journal, with Sacred's arguments: datetimes for times, the whole output so far for
    ``captured_out``, lists for metrics. It is delivered in the background like any observer."""

    def __init__(self, observer: Any):
        self.observer = observer
        self.priority = getattr(observer, "priority", 0)
        self.url = getattr(observer, "url", None)
        self._output = ""
        self._info: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return type(self.observer).__name__

    def _call(self, method: str, *args: Any) -> Any:
        function = getattr(self.observer, method, None)
        return function(*args) if callable(function) else None

    def started(self, record: RunRecord, _id: Any) -> Any:
        self._output, self._info = "", dict(record.get("info") or {})
        experiment = {**record["experiment"], "sources": []}  # Sacred's observers get them with the start
        method = "queued_event" if record.get("status") == "QUEUED" else "started_event"
        chosen = self._call(method, experiment, record["command"], record.get("host"),
                            _naive_utc(record["start_time"]), record["config"], record.get("meta"), _id)
        return _id if chosen is None else chosen

    def metrics(self, metrics: dict[str, Any]) -> None:
        by_name = {name: {"steps": [int(s) for s in series["steps"]], "values": list(series["values"]),
                          "timestamps": [_naive_utc(t) for t in series["timestamps"]]}
                   for name, series in metrics.items()}
        self._call("log_metrics", by_name, self._info)

    def heartbeat(self, info: dict[str, Any], output: str, result: Any, beat_time: str) -> None:
        self._output += output
        self._info = info
        self._call("heartbeat_event", info, self._output, _naive_utc(beat_time), result)

    def artifact(self, name: str, path: str, metadata: Any, content_type: str | None) -> None:
        self._call("artifact_event", name, path, metadata, content_type)

    def resource(self, path: str, md5: str, stored_path: str) -> None:
        self._call("resource_event", path)

    def ended(self, status: str, stop_time: str, result: Any, fail_trace: list[str] | None,
              info: dict[str, Any], output: str) -> None:
        moment = _naive_utc(stop_time)
        self.heartbeat(info, output, result, stop_time)  # Sacred beats once more as a run stops
        if status == "COMPLETED":
            self._call("completed_event", moment, result)
        elif status == "FAILED":
            self._call("failed_event", moment, fail_trace or [])
        elif status != "QUEUED":
            self._call("interrupted_event", moment, status)


def _naive_utc(moment: str | float) -> datetime.datetime:
    """labrun's naive-UTC ISO text or POSIX seconds as the naive UTC datetime Sacred passes."""
    if isinstance(moment, str):
        return datetime.datetime.fromisoformat(moment)
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).replace(tzinfo=None)


def adapt(observer: Any) -> Any:
    """The observer itself, or an adapter when it was written for Sacred (see SacredObserverAdapter)."""
    return SacredObserverAdapter(observer) if speaks_sacred(observer) else observer


def observer_url(observer: Any) -> str | None:
    """The URL that rebuilds ``observer``, credentials redacted; None for one without (added as an object)."""
    from labrun._util.redact import redact_url

    url = getattr(observer, "url", None)
    return redact_url(url) if url else None


def id_asked_for(record: RunRecord) -> bool:
    """Whether the user chose the run's id (``--id``): a store must then use it or fail, not pick another."""
    return (record.get("meta") or {}).get("options", {}).get("--id") not in (None, "", False)


def require_package(module: str, extra: str, title: str) -> None:
    """Fail at once, with the install command, when a backend's package is missing. The package is only
    looked up here, not imported: the observer imports it in its delivery thread, when first used."""
    import importlib.util

    from labrun.errors import ObserverNotAvailableError

    if importlib.util.find_spec(module) is None:
        raise ObserverNotAvailableError(f"the {title} observer needs the package '{module}', which is not "
                                        f"installed: pip install 'labrun[{extra}]'")
