"""The recorder thread: moves what a run produces from memory into its journal.

The training thread only extends a per-metric array of doubles; every ``FLUSH_INTERVAL`` seconds this
thread takes what is there in batches, and every ``beat_interval`` seconds it writes a heartbeat with the
run's info, the output printed since the last beat and the result so far, and samples the system metrics
(``system/...``: process CPU and memory, GPU use), once more when the run ends.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from array import array
from typing import Any, Callable

from labrun.recording.journal import Journal
from labrun.recording.metric_codec import encode_points

FLUSH_INTERVAL = 0.1  # seconds: metrics reach the journal, and so a killed run's store, within a second;
# short enough that a tight loop buffers at most a few MB
MAX_BATCH = 50_000  # points per journal line: bounded memory however fast points come
logger = logging.getLogger("labrun")


def metrics_event(name: str, points: array | memoryview) -> tuple[bytes, bytes, bytes]:
    """A journal metrics event as JSON text in pieces (see Journal.append): json.dumps would scan every
    base64 character for escapes, and joining would copy them."""
    return (b'{"type":"metrics","name":%s,"points":"' % json.dumps(name).encode("utf-8"), encode_points(points),
            b'"}')


class Recorder(threading.Thread):
    """Takes the run's metric buffers into journal batches and writes heartbeats."""

    def __init__(self, journal: Journal, metrics: dict[str, Any], beat: Callable[[], dict[str, Any]],
                 beat_interval: float, system_metrics: bool = True):
        super().__init__(name="labrun-recorder", daemon=True)
        self.journal = journal
        self.metrics = metrics  # name: the run's MetricBuffer, whose points the training thread extends
        self.beat = beat
        self.beat_interval = beat_interval
        self._stopping = threading.Event()
        self._sampler: Any = None
        self._samples = 0
        self.system_metrics = system_metrics

    def run(self) -> None:
        self._sampler = _system_sampler() if self.system_metrics else None
        next_beat = time.monotonic() + self.beat_interval if self.beat_interval > 0 else float("inf")
        failing = False
        while not self._stopping.wait(FLUSH_INTERVAL):
            try:  # this thread must outlive any error: without it nothing more reaches the journal
                self.flush_metrics()
                self.journal.retry()  # events waiting for room on a full disk
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.beat_interval
                    self.journal.append([self.beat()])
                    self.sample_system()
                failing = False
            except Exception:
                if not failing:
                    logger.exception("labrun's recorder failed; it goes on and tries again")
                failing = True

    def flush_metrics(self) -> None:
        """Write every point logged so far, in journal lines of at most MAX_BATCH points per metric."""
        for name, metric in list(self.metrics.items()):
            buffer = metric.points
            # Slicing and deleting are single C calls, as is log_scalar's extend: no point is lost or taken
            # twice, and the training thread never waits. Everything is taken at once, so the delete moves
            # only what was appended meanwhile.
            count = len(buffer)
            if not count:
                continue
            taken = memoryview(buffer[:count])
            del buffer[:count]
            for start in range(0, count, 3 * MAX_BATCH):
                self.journal.append([metrics_event(name, taken[start:start + 3 * MAX_BATCH])])

    def sample_system(self) -> None:
        """One point of each system metric; step n is the n-th sample."""
        if self._sampler is None:
            return
        try:
            values = self._sampler.sample()
        except Exception as exc:  # psutil or NVML failing must not touch the run
            logger.debug("system metrics unavailable: %s", exc)
            return
        now = time.time()
        self.journal.append([metrics_event(name, array("d", (self._samples, value, now)))
                             for name, value in values.items()])
        self._samples += 1

    def stop(self) -> None:
        """Stop beating and write every point still in memory."""
        self._stopping.set()
        if self.is_alive():
            self.join()
        self.flush_metrics()
        self.sample_system()


def _system_sampler() -> Any:
    from labrun.provenance.system_metrics import SystemSampler

    try:
        return SystemSampler()
    except Exception as exc:
        logger.debug("system metrics unavailable: %s", exc)
        return None
