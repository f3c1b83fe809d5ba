"""A recorded run as read back from a store, whatever the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
