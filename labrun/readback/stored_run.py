"""A recorded run as read back from a store, whatever the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

DIED = "DIED"
MISSED_BEATS = 3  # a RUNNING run whose heartbeat is older than this many beat intervals has died


@dataclass
class StoredRun:
    """What ``labrun rerun`` needs of a recorded run.

    ``sources`` maps each source file's path (relative to the experiment's base_dir) to a readable copy;
    ``final_metrics`` holds each metric's last value; ``observer_args`` are the command-line options that
    record a new run into the same store. ``store`` names the store for people (credentials redacted);
    ``store_url`` opens it again (credentials included: never print it).
    """

    run_id: Any
    store: str
    record: dict[str, Any]
    config: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)
    observer_args: list[str] = field(default_factory=list)
    store_url: str = ""

    @property
    def uid(self) -> str | None:
        return self.record.get("uid")


def effective_status(record: dict[str, Any], now: float | None = None) -> str:
    """The recorded status, except DIED for a run recorded as RUNNING whose last heartbeat is older than
    three beat intervals (killed without a chance to say so; Omniboard calls it "probably dead")."""
    from labrun.timestamps import posix

    status = record.get("status") or "UNKNOWN"
    if status != "RUNNING":
        return status
    beat = record.get("heartbeat") or record.get("start_time")
    interval = (record.get("meta") or {}).get("options", {}).get("--beat-interval") or 10.0
    try:
        age = (time.time() if now is None else now) - posix(str(beat))
    except (TypeError, ValueError):
        return status
    return DIED if interval and age > MISSED_BEATS * float(interval) else status
