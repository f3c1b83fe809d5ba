"""The journal's events: one constructor per kind, and the one table of which observer method receives
each. docs/journal.md describes the journal's format; this module is its definition.

Every event is a JSON object with a ``type``. ``metrics`` events are written by the recorder in their
encoded form (``recorder.metrics_event``) and are handed to observers in batches by
``dispatcher.deliver_events``, which also handles ``started`` (the run-id hand-over); every other kind goes
through ``OBSERVER_CALLS``.
"""

from __future__ import annotations

from typing import Any, Callable
from labrun.stores.record import RunRecord

Event = dict[str, Any]


def started(record: RunRecord, observers: list[dict[str, Any]]) -> Event:
    """The run began: its record, and the observers (by URL) that ``labrun sync`` would deliver to."""
    return {"type": "started", "record": record, "observers": observers}


def sources(entries: list[dict[str, str]]) -> Event:
    """Source files: ``[{"path", "md5", "stored"}]``, ``stored`` being the journal's copy."""
    return {"type": "sources", "sources": entries}


def heartbeat(info: Any, output: str, result: Any, time: str) -> Event:
    """The run is alive: its info, the output since the last beat, the result so far."""
    return {"type": "heartbeat", "info": info, "output": output, "result": result, "time": time}


def artifact(name: str, path: str, metadata: Any, content_type: str | None) -> Event:
    return {"type": "artifact", "name": name, "path": path, "metadata": metadata, "content_type": content_type}


def resource(path: str, md5: str, stored: str) -> Event:
    return {"type": "resource", "path": path, "md5": md5, "stored": stored}


def store_ids(ids: list[dict[str, Any]]) -> Event:
    """The stores numbered the run differently: each observer's name, URL and id."""
    return {"type": "store_ids", "ids": ids}


def ended(status: str, time: str, result: Any, fail_trace: list[str] | None, info: Any, output: str) -> Event:
    return {"type": "ended", "status": status, "time": time, "result": result, "fail_trace": fail_trace,
            "info": info, "output": output}


#: event kind -> how an observer receives it (``started`` and ``metrics``: see the module's docstring)
OBSERVER_CALLS: dict[str, Callable[[Any, Event], Any]] = {
    "sources": lambda observer, e: observer.sources(e["sources"]),
    "heartbeat": lambda observer, e: observer.heartbeat(e["info"], e["output"], e["result"], e["time"]),
    "artifact": lambda observer, e: observer.artifact(e["name"], e["path"], e["metadata"], e["content_type"]),
    "resource": lambda observer, e: observer.resource(e["path"], e["md5"], e["stored"]),
    "store_ids": lambda observer, e: observer.store_ids(e["ids"]),
    "ended": lambda observer, e: observer.ended(e["status"], e["time"], e["result"], e["fail_trace"], e["info"],
                                                e["output"]),
}
