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

from labrun._util.redact import redact_url
from labrun.recording import events
from labrun.recording.journal import Journal, read_events
from labrun.recording.metric_codec import POINT_CHARS, EncodedSeries
from labrun.observer import observer_url

logger = logging.getLogger("labrun.dispatch")
ID_HANG_GUARD = 300.0  # seconds: the run waits for its id while an observer is still trying to start; each
# observer's start is bounded by its own timeouts (MongoDB: 3 s to find a server), so this only catches a hang
MAX_BACKOFF = 30.0


class RunId:
    """The run's id: named by ``--id``, else by the first observer, in priority order, whose start succeeds.

    Each observer's start waits until those before it answered or failed, so stores agree on the number
    whenever the preferred one is reachable, however loaded the machine; one that fails hands the naming on
    at once. When stores still name the run differently (an id taken in one store only), ``named`` says so
    and each store is told the others' ids.
    """

    def __init__(self, value: Any, observers: int, naming: list[bool] | None = None):
        self.value = value
        self.known = threading.Event()
        self._turns = [threading.Event() for _ in range(observers)]  # set when observer i tried its start
        # Observers that can give the run its id (a file store, MongoDB); the run waits for those only, never
        # for a store that records under ids of its own (MLflow), so a slow server cannot hold up `main`.
        self._naming = naming if naming is not None else [True] * observers
        if value is not None:
            self.known.set()
        self._lock = threading.Lock()
        self.named: dict[int, Any] = {}  # observer index: the id it stored the run under

    def wait_turn(self, index: int) -> Any:
        """Wait until every observer before ``index`` tried to start; the id known by then, if any."""
        if index and not self.known.is_set():
            self._turns[index - 1].wait(ID_HANG_GUARD)
        return self.value

    def tried(self, index: int, answer: Any = None) -> bool:
        """Observer ``index`` tried its start; a non-None answer names the run if nobody did before. True when
        the stores that answered so far disagree on the id."""
        with self._lock:
            if answer is not None:
                self.named[index] = answer
                if self.value is None:
                    self.value = answer
                    self.known.set()
            disagree = len({repr(v) for v in self.named.values()}) > 1
        self._turns[index].set()
        return disagree

    def wait(self) -> Any:
        """The id once known, or None when every observer tried without naming it."""
        deadline = time.monotonic() + ID_HANG_GUARD
        while not self.known.is_set() and time.monotonic() < deadline:
            if all(turn.is_set() for turn, names in zip(self._turns, self._naming) if names):
                break
            self.known.wait(0.01)
        return self.value


class Delivery(threading.Thread):
    """Delivers journal events to one observer, in order, retrying the event that failed (after 1, 2, 4 ...
    seconds, at most MAX_BACKOFF)."""

    clock: Callable[[], float] = staticmethod(time.monotonic)  # replaceable, so backoff is testable in no time

    def __init__(self, observer: Any, journal: Journal, run_id: RunId, index: int):
        super().__init__(name=f"labrun-deliver-{type(observer).__name__}", daemon=True)
        self.observer = observer
        self.journal = journal
        self.run_id = run_id
        self.index = index  # position in priority order
        self.offset = 0
        self.failures = 0
        self.retry_at = 0.0
        self.deadline: float | None = None
        self.done = False
        self.finishing = False  # the run ended: a second failure in a row leaves the rest to `labrun sync`
        self.gave_up = False
        self.stopped = False  # the run's process stops waiting: leave the rest to the background delivery
        self.assigned_id: Any = None  # the id this observer stored the run under
        self.on_ids_disagree: Callable[[], None] | None = None  # set by the Dispatcher

    @property
    def label(self) -> str:
        return getattr(self.observer, "name", type(self.observer).__name__)

    def run(self) -> None:
        while True:
            if self.clock() >= self.retry_at:
                self._deliver_available()
            if self.offset >= self.journal.committed and self.journal.closed:
                self.done = True
                return
            if self.stopped or self.gave_up or (self.deadline is not None and self.clock() >= self.deadline):
                return
            with self.journal.changed:
                if self.offset >= self.journal.committed and not self.journal.closed:
                    self.journal.changed.wait(0.25)
                else:
                    self.journal.changed.wait(0.02 if self.clock() < self.retry_at else 0)

    def _deliver_available(self) -> None:
        limit = self.journal.committed
        if self.offset >= limit:
            return
        try:
            for offset in deliver_events(self.observer, self.journal.path, self.offset, limit, self._start_observer):
                self.offset = offset
                if self.stopped:
                    return
            if self.failures:
                logger.warning("observer %s is delivering again", self.label)
            self.failures = 0
        except Exception as exc:  # an observer's failure must never reach the run
            self.failures += 1
            if self.failures == 1:
                logger.error("observer %s failed (%s: %s); retrying in the background, the run goes on",
                             self.label, type(exc).__name__, redact_url(str(exc)))
            if self.finishing and self.failures >= 2:
                self.gave_up = True
            self.retry_at = self.clock() + min(MAX_BACKOFF, 0.5 * 2 ** min(self.failures, 8))

    def _start_observer(self, record: dict[str, Any]) -> Any:
        given = self.run_id.wait_turn(self.index)
        try:
            chosen = self.observer.started(record, given)
        except BaseException:
            self.run_id.tried(self.index)
            raise
        self.assigned_id = chosen
        if self.run_id.tried(self.index, chosen) and self.on_ids_disagree is not None:
            self.on_ids_disagree()
        return chosen


COALESCE_POINTS = 250_000  # metric points handed to an observer in one call, at most (more if one batch is)


class Tally:
    """Events and metric points an observer accepted: what progress lines count."""

    __slots__ = ("events", "points")

    def __init__(self) -> None:
        self.events = 0
        self.points = 0


def deliver_events(observer: Any, path: str, offset: int, limit: int,
                   started: Callable[[dict[str, Any]], Any], tally: Tally | None = None) -> Iterator[int]:
    """Hand the journal's events between ``offset`` and ``limit`` to ``observer``, yielding the offset just past
    what it accepted after each call (an exception leaves the caller at the last offset yielded); ``tally``
    counts what it accepted.

    Consecutive metrics events go in one ``metrics`` call (batches of one metric joined: base64 of whole
    points has no padding, so the texts concatenate), and a store writes them in one round trip. ``started``
    handles the started event.
    """
    tally = tally or Tally()
    pending: dict[str, list[memoryview]] = {}
    pending_points = pending_events = 0

    def flush() -> None:
        nonlocal pending, pending_points, pending_events
        observer.metrics({name: EncodedSeries(texts[0] if len(texts) == 1 else b"".join(texts))
                          for name, texts in pending.items()})
        tally.events += pending_events
        tally.points += pending_points
        pending, pending_points, pending_events = {}, 0, 0

    end = offset
    for end, event in read_events(path, offset, limit):
        kind = event["type"]
        if kind == "metrics":
            offset = end
            pending.setdefault(event["name"], []).append(event["points"])
            pending_points += len(event["points"]) // POINT_CHARS
            pending_events += 1
            if pending_points >= COALESCE_POINTS:
                flush()
                yield end
            continue
        if pending:
            flush()
            yield offset
        if kind == "started":
            started(event["record"])
        elif kind in events.OBSERVER_CALLS:  # a kind this version does not know is skipped
            events.OBSERVER_CALLS[kind](observer, event)
        tally.events += 1
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
        self._told_ids: set[str] = set()
        self._ids_lock = threading.Lock()
        for delivery in self.deliveries:
            delivery.on_ids_disagree = self._record_store_ids

    def start(self) -> None:
        for delivery in self.deliveries:
            delivery.start()

    def store_ids(self) -> list[dict[str, Any]]:
        """Each observer that named the run, with the id it stored it under."""
        from labrun.observer import observer_url

        return [{"observer": d.label, "url": observer_url(d.observer), "id": self.run_id.named[d.index]}
                for d in self.deliveries if d.index in self.run_id.named]

    def _record_store_ids(self) -> None:
        """Stores numbered the run differently: every store records every store's id (a journal event, so a
        store that is behind gets it too), and the user is told once."""
        with self._ids_lock:
            ids = self.store_ids()
            key = repr(ids)
            if key in self._told_ids or self.journal.closed:
                return
            if not self._told_ids:
                logger.warning("the stores numbered this run differently (%s); each store records every "
                               "store's number under 'store_ids', and the run's uid %s is the same in all",
                               ", ".join(f"{e['observer']}: {e['id']}" for e in ids), self.journal.uid)
            self._told_ids.add(key)
            self.journal.append([events.store_ids(ids)])

    def observers_by_url(self) -> list[dict[str, Any]]:
        """Each observer's name and URL (credentials redacted; None for one added as an object)."""
        return [{"observer": d.label, "url": observer_url(d.observer)} for d in self.deliveries]

    def progress(self) -> list[dict[str, Any]]:
        """How far each observer confirmed the journal, and the id it stored the run under (delivered.json)."""
        from labrun.config.values import storable

        return [{"observer": d.label, "offset": d.offset, "id": storable(d.assigned_id),
                 "url": observer_url(d.observer)} for d in self.deliveries]

    def failing(self) -> list[str]:
        """The observers that gave up (failed while the run's end waited for them)."""
        return [d.label for d in self.deliveries if d.gave_up]

    def urls(self) -> list[str]:
        """The observers' URLs with their credentials, for a background delivery (never print them)."""
        return [d.observer.url for d in self.deliveries if getattr(d.observer, "url", None)]

    def finish(self, timeout: float, hurry: threading.Event | None = None) -> list[str]:
        """Wait up to ``timeout`` seconds for every observer (less if ``hurry`` is set: a Ctrl-C), showing
        progress on a terminal; the names of those left behind."""
        from labrun._util.progress import ProgressLine

        deadline = time.monotonic() + timeout
        for delivery in self.deliveries:
            delivery.deadline = deadline
            delivery.finishing = True
            if delivery.failures:  # failing now: retry at once, and stop at the next failure
                delivery.retry_at = 0.0
        with self.journal.changed:
            self.journal.changed.notify_all()
        line = ProgressLine(interval=0.5)
        shown_after = time.monotonic() + 1.0  # a quick delivery shows no line at all
        while any(d.is_alive() for d in self.deliveries) and time.monotonic() < deadline + 1.0:
            if hurry is not None and hurry.is_set():
                break
            if time.monotonic() >= shown_after:
                line.show(self._progress())
            for delivery in self.deliveries:
                if delivery.is_alive():
                    delivery.join(0.1)
                    break
        line.clear()
        for delivery in self.deliveries:  # the call in flight may finish; nothing after it starts
            delivery.stopped = True
        stop_by = time.monotonic() + 2.0
        for delivery in self.deliveries:
            delivery.join(max(0.0, stop_by - time.monotonic()))
        return [d.label for d in self.deliveries if not d.done]

    def _progress(self) -> str:
        total = max(1, self.journal.committed)
        behind = [d for d in self.deliveries if d.is_alive()]
        return "delivering to " + "; ".join(
            f"{d.label}: {100 * d.offset // total}% of {self.journal.points:,} points" for d in behind)
