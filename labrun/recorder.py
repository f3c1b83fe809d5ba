"""The recorder thread: moves what a run produces from memory into its journal.

The training thread only extends a per-metric array of doubles; every ``FLUSH_INTERVAL`` seconds this
thread takes what is there in batches, and every ``beat_interval`` seconds it writes a heartbeat with the run's info, the
output printed since the last beat and the result so far.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from array import array
from typing import Any, Callable

from labrun.journal import Journal
from labrun.metric_codec import encode

FLUSH_INTERVAL = 0.1  # seconds: metrics reach the journal, and so a killed run's store, within a second;
# short enough that a tight loop buffers at most a few MB
MAX_BATCH = 50_000  # points per journal line: bounded memory however fast points come


def iso(moment: float | _dt.datetime) -> str:
    """Sacred's time format: naive ISO-8601 in UTC."""
    if not isinstance(moment, _dt.datetime):
        moment = _dt.datetime.fromtimestamp(moment, _dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).replace(tzinfo=None).isoformat()


def iso_times(stamps: Any) -> list[str]:
    """Many POSIX timestamps as iso() strings, formatting each second only once."""
    prefixes: dict[int, str] = {}
    out = []
    for stamp in stamps:
        second = int(stamp)
        prefix = prefixes.get(second)
        if prefix is None:
            prefix = prefixes[second] = iso(float(second))
        out.append("%s.%06d" % (prefix, (stamp - second) * 1e6))
    return out


class Recorder(threading.Thread):
    """Takes the run's metric buffers into journal batches and writes heartbeats."""

    def __init__(self, journal: Journal, buffers: dict[str, array], beat: Callable[[], dict[str, Any]],
                 beat_interval: float):
        super().__init__(name="labrun-recorder", daemon=True)
        self.journal = journal
        self.buffers = buffers
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
        """Write every point logged so far, in journal lines of at most MAX_BATCH points per metric."""
        for name, buffer in list(self.buffers.items()):
            # Slicing and deleting are single C calls, as is log_scalar's extend: no point is lost or taken
            # twice, and the training thread never waits. Everything is taken at once, so the delete moves
            # only what was appended meanwhile.
            count = len(buffer)
            if not count:
                continue
            taken = buffer[:count]
            del buffer[:count]
            for start in range(0, count, 3 * MAX_BATCH):
                part = taken[start:start + 3 * MAX_BATCH]
                series = {"steps": part[0::3], "values": part[1::3], "timestamps": part[2::3]}
                self.journal.append([{"type": "metrics", "metrics": {name: encode(series)}}])

    def stop(self) -> None:
        """Stop beating and write every point still in memory."""
        self._stopping.set()
        if self.is_alive():
            self.join()
        self.flush_metrics()
