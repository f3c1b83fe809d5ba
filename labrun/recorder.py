"""The recorder thread: moves what a run produces from memory into its journal.

The training thread only appends metric points to a deque; every ``flush_interval`` seconds this thread
takes them in batches, and every ``beat_interval`` seconds it writes a heartbeat with the run's info, the
output printed since the last beat and the result so far.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from collections import deque
from typing import Any, Callable

from labrun.journal import Journal

FLUSH_INTERVAL = 0.5  # seconds: metrics reach the journal, and so a killed run's store, within a second
MAX_BATCH = 50_000  # points per journal line: bounded memory however fast points come


def iso(moment: float | _dt.datetime) -> str:
    """Sacred's time format: naive ISO-8601 in UTC."""
    if not isinstance(moment, _dt.datetime):
        moment = _dt.datetime.fromtimestamp(moment, _dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).replace(tzinfo=None).isoformat()


class Recorder(threading.Thread):
    def __init__(self, journal: Journal, points: deque, beat: Callable[[], dict[str, Any]],
                 beat_interval: float):
        super().__init__(name="labrun-recorder", daemon=True)
        self.journal = journal
        self.points = points
        self.beat = beat
        self.beat_interval = beat_interval
        self._stopping = threading.Event()

    def run(self) -> None:
        next_beat = time.monotonic() + self.beat_interval if self.beat_interval > 0 else float("inf")
        while not self._stopping.wait(FLUSH_INTERVAL):
            self.flush_metrics()
            if time.monotonic() >= next_beat:
                self.journal.append([self.beat()])
                next_beat = time.monotonic() + self.beat_interval

    def flush_metrics(self) -> None:
        points = self.points
        while points:
            grouped: dict[str, dict[str, list]] = {}
            pop = points.popleft
            for _ in range(min(len(points), MAX_BATCH)):
                name, step, value, stamp = pop()
                series = grouped.get(name)
                if series is None:
                    series = grouped[name] = {"steps": [], "values": [], "timestamps": []}
                series["steps"].append(step)
                series["values"].append(value)
                series["timestamps"].append(stamp)
            self.journal.append([{"type": "metrics", "metrics": grouped}])

    def stop(self) -> None:
        """Stop beating and write every point still in memory."""
        self._stopping.set()
        if self.is_alive():
            self.join()
        self.flush_metrics()
