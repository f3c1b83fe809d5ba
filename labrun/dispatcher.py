"""Feeding observers from the journal: one delivery thread per observer, each with its own cursor.

An observer that raises or is slow holds up only its own thread: the run and the other observers go on.
Errors are logged once per observer and retried with backoff; what is still undelivered when the run ends
(after a bounded wait, shorter for an observer that fails twice in a row after the run ended) stays in the
journal for ``labrun sync``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator, Sequence

from labrun.journal import Journal, read_events
from labrun.metric_codec import POINT_CHARS, EncodedSeries

logger = logging.getLogger("labrun.dispatch")
ID_TIMEOUT = 5.0  # seconds the run waits at start for the first observer to name its id
MAX_BACKOFF = 30.0


class RunId:
    """The run's id: named by ``--id``, else by the first observer, in priority order, whose start succeeds.

    Each observer's start waits for those before it to answer or fail (at most ID_TIMEOUT in all), so a
    failing observer hands the naming on at once instead of holding the run up.
    """

    def __init__(self, value: Any, observers: int):
        self.value = value
        self.known = threading.Event()
        self._turns = [threading.Event() for _ in range(observers)]  # set when observer i tried its start
        if value is not None:
            self.known.set()
        self._lock = threading.Lock()

    def wait_turn(self, index: int, deadline: float) -> Any:
        """Wait until every observer before ``index`` tried to start; the id known by then, if any."""
        if index and not self.known.is_set():
            self._turns[index - 1].wait(max(0.0, deadline - time.monotonic()))
        return self.value

    def tried(self, index: int, answer: Any = None) -> None:
        """Observer ``index`` tried its start; a non-None answer names the run if nobody did before."""
        with self._lock:
            if answer is not None and self.value is None:
                self.value = answer
                self.known.set()
        self._turns[index].set()

    def wait(self, timeout: float) -> Any:
        """The id once known, or None when every observer tried (or ``timeout`` passed) without naming it."""
        deadline = time.monotonic() + timeout
        while not self.known.is_set() and time.monotonic() < deadline:
            if all(turn.is_set() for turn in self._turns):
                break
            self.known.wait(0.01)
        return self.value


class Delivery(threading.Thread):
    """Delivers journal events to one observer, in order, retrying the event that failed."""

    def __init__(self, observer: Any, journal: Journal, run_id: RunId, index: int):
        super().__init__(name=f"labrun-deliver-{type(observer).__name__}", daemon=True)
        self.observer = observer
        self.journal = journal
        self.run_id = run_id
        self.index = index  # position in priority order
        self.started_at = time.monotonic()
        self.offset = 0
        self.failures = 0
        self.retry_at = 0.0
        self.deadline: float | None = None
        self.done = False
        self.finishing = False  # the run ended: a second failure in a row leaves the rest to `labrun sync`
        self.gave_up = False
        self.assigned_id: Any = None  # the id this observer stored the run under

    @property
    def label(self) -> str:
        return getattr(self.observer, "name", type(self.observer).__name__)

    def run(self) -> None:
        while True:
            if time.monotonic() >= self.retry_at:
                self._deliver_available()
            if self.offset >= self.journal.committed and self.journal.closed:
                self.done = True
                return
            if self.gave_up or (self.deadline is not None and time.monotonic() >= self.deadline):
                return
            with self.journal.changed:
                if self.offset >= self.journal.committed and not self.journal.closed:
                    self.journal.changed.wait(0.25)
                else:
                    self.journal.changed.wait(0.02 if time.monotonic() < self.retry_at else 0)

    def _deliver_available(self) -> None:
        limit = self.journal.committed
        if self.offset >= limit:
            return
        try:
            for self.offset in deliver_events(self.observer, self.journal.path, self.offset, limit, self._start_observer):
                pass
            if self.failures:
                logger.warning("observer %s is delivering again", self.label)
            self.failures = 0
        except Exception as exc:  # an observer's failure must never reach the run
            self.failures += 1
            if self.failures == 1:
                logger.error("observer %s failed (%s: %s); retrying in the background, the run goes on",
                             self.label, type(exc).__name__, exc)
            if self.finishing and self.failures >= 2:
                self.gave_up = True
            self.retry_at = time.monotonic() + min(MAX_BACKOFF, 0.5 * 2 ** min(self.failures, 8))

    def _start_observer(self, record: dict[str, Any]) -> Any:
        given = self.run_id.wait_turn(self.index, self.started_at + ID_TIMEOUT)
        try:
            chosen = self.observer.started(record, given)
        except BaseException:
            self.run_id.tried(self.index)
            raise
        self.run_id.tried(self.index, chosen)
        self.assigned_id = chosen
        return chosen


COALESCE_POINTS = 250_000  # metric points handed to an observer in one call, at most (more if one batch is)


def deliver_events(observer: Any, path: str, offset: int, limit: int,
                   started: Callable[[dict[str, Any]], Any]) -> Iterator[int]:
    """Hand the journal's events between ``offset`` and ``limit`` to ``observer``, yielding the offset just past
    what it accepted after each call (an exception leaves the caller at the last offset yielded).

    Consecutive metrics events go in one ``metrics`` call (batches of one metric joined: base64 of whole
    points has no padding, so the texts concatenate), and a store writes them in one round trip. ``started``
    handles the started event.
    """
    pending: dict[str, list[memoryview]] = {}
    pending_points = 0

    def flush() -> None:
        nonlocal pending, pending_points
        observer.metrics({name: EncodedSeries(texts[0] if len(texts) == 1 else b"".join(texts))
                          for name, texts in pending.items()})
        pending, pending_points = {}, 0

    for end, event in read_events(path, offset, limit):
        kind = event["type"]
        if kind == "metrics":
            offset = end
            pending.setdefault(event["name"], []).append(event["points"])
            pending_points += len(event["points"]) // POINT_CHARS
            if pending_points >= COALESCE_POINTS:
                flush()
                yield end
            continue
        if pending:
            flush()
            yield offset
        if kind == "started":
            started(event["record"])
        elif kind == "heartbeat":
            observer.heartbeat(event["info"], event["output"], event["result"], event["time"])
        elif kind == "artifact":
            observer.artifact(event["name"], event["path"], event["metadata"], event["content_type"])
        elif kind == "resource":
            observer.resource(event["path"], event["md5"], event["stored"])
        elif kind == "sources":
            observer.sources(event["sources"])
        elif kind == "ended":
            observer.ended(event["status"], event["time"], event["result"], event["fail_trace"], event["info"],
                           event["output"])
        yield end
    if pending:
        flush()
        yield end


class Dispatcher:
    """Starts a delivery thread per observer and ends them within a bounded time."""

    def __init__(self, observers: Sequence[Any], journal: Journal, run_id: RunId):
        ordered = sorted(observers, key=lambda o: -getattr(o, "priority", 0))
        self.journal = journal
        self.run_id = run_id
        self.deliveries = [Delivery(o, journal, run_id, i) for i, o in enumerate(ordered)]

    def start(self) -> None:
        for delivery in self.deliveries:
            delivery.start()

    def finish(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` seconds for every observer; the names of those left behind."""
        deadline = time.monotonic() + timeout
        for delivery in self.deliveries:
            delivery.deadline = deadline
            delivery.finishing = True
            if delivery.failures:  # failing now: retry at once, and stop at the next failure
                delivery.retry_at = 0.0
        with self.journal.changed:
            self.journal.changed.notify_all()
        for delivery in self.deliveries:
            delivery.join(max(0.0, deadline - time.monotonic()) + 1.0)
        return [d.label for d in self.deliveries if not d.done]
