"""The recorder thread: moves what a run produces from memory into its journal.

The training thread only extends a per-metric array of doubles; every ``FLUSH_INTERVAL`` seconds this
thread takes what is there in batches, and every ``beat_interval`` seconds it writes a heartbeat with the run's info, the
output printed since the last beat and the result so far.
"""

from __future__ import annotations

import json
import threading
import time
from array import array
from typing import Any, Callable

from labrun.journal import Journal
from labrun.metric_codec import encode_points

FLUSH_INTERVAL = 0.1  # seconds: metrics reach the journal, and so a killed run's store, within a second;
# short enough that a tight loop buffers at most a few MB
MAX_BATCH = 50_000  # points per journal line: bounded memory however fast points come


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
            quoted = json.dumps(name)
            for start in range(0, count, 3 * MAX_BATCH):
                # Built as text: json.dumps would scan every base64 character for escapes.
                self.journal.append(['{"type":"metrics","name":%s,"points":"%s"}'
                                     % (quoted, encode_points(taken[start:start + 3 * MAX_BATCH]))])

    def stop(self) -> None:
        """Stop beating and write every point still in memory."""
        self._stopping.set()
        if self.is_alive():
            self.join()
        self.flush_metrics()
