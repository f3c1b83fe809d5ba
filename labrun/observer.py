"""What an observer implements. Observers are fed from the run's journal by their own delivery thread.

Each method receives one journal event's content. A method that raises is retried later with the same
content (the journal keeps it), so methods should tolerate a repeat of the call that failed.
"""

from __future__ import annotations

from typing import Any


class RunObserver:
    """Base class: every method is optional; the default does nothing."""

    #: Observers with higher priority are asked first for the run's id.
    priority: int = 0

    @property
    def name(self) -> str:
        return type(self).__name__

    def started(self, record: dict[str, Any], _id: Any) -> Any:
        """A run started (``record`` is the run record). Return the id used, or None; ``_id`` is the id
        chosen by a higher-priority observer (or ``--id``), to be used when given.

        The source files arrive just after, through ``sources``, so naming the run waits for no copying.
        """
        return _id

    def find_run(self, record: dict[str, Any]) -> Any:
        """The id under which this store holds the run with ``record["uid"]``, or None if it holds none.
        ``labrun sync`` asks before replaying a killed run's journal; a store that cannot tell keeps this."""
        raise NotImplementedError(f"{self.name} cannot look a run up by its uid")

    def resumed(self, record: dict[str, Any], _id: Any) -> None:
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


def observer_url(observer: Any) -> str | None:
    """The URL that rebuilds ``observer``, credentials redacted; None for one without (added as an object)."""
    from labrun.redact import redact_url

    url = getattr(observer, "url", None)
    return redact_url(url) if url else None


def id_asked_for(record: dict[str, Any]) -> bool:
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
