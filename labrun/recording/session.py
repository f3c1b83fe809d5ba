"""A run's recording: the journal its events go to, the dispatcher that feeds the observers from it, the
recorder thread (metric batches, heartbeats) and the output capture.

``Run`` keeps the user API and the status machine; whatever is to be stored goes through a ``Recording``.
The event kinds are defined in ``labrun.recording.events``; the journal's format and delivery in docs/journal.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

from labrun.recording import events
from labrun._util.env_vars import DELIVERY_TIMEOUT_ENV
from labrun.config.values import storable
from labrun._util.timestamps import iso, utcnow

if TYPE_CHECKING:
    from labrun.recording.dispatcher import Dispatcher
    from labrun.recording.journal import Journal
    from labrun.recording.output import OutputCapture
    from labrun.recording.recorder import Recorder
    from labrun.run import Run

DEFAULT_DELIVERY_TIMEOUT = 30.0
logger = logging.getLogger("labrun")


class Recording:
    """Opened when an observed run starts (``start``) or is queued (``queue``), closed when it ends
    (``finish``). Everything it writes is a journal event; observers are fed from the journal in the
    background, so nothing here waits on a store until the run's end."""

    def __init__(self, run: Run):
        self.run = run
        self.journal: Journal | None = None
        self.dispatcher: Dispatcher | None = None
        self.recorder: Recorder | None = None
        self.output: OutputCapture | None = None

    # -- opening ---------------------------------------------------------------------------------------------
    def start(self) -> Any:
        """Journal the start, start delivering, capturing output and recording; the run's id."""
        from labrun.recording.output import OutputCapture
        from labrun.recording.recorder import Recorder

        dispatcher = self._open()
        run_id = dispatcher.run_id.wait()
        if self.run.capture_mode != "no":
            self.output = OutputCapture(self.run.capture_mode)
            self.output.start()
        self.recorder = Recorder(self._journal, self.run.metric_buffers, self.heartbeat,
                                 self.run.beat_interval, self.run.records_system_metrics)
        self.recorder.start()
        return run_id

    def queue(self) -> Any:
        """-q: the run recorded as QUEUED, nothing more; its id."""
        run_id = self._open().run_id.wait()
        self._end_delivery()
        return run_id

    def _open(self) -> Dispatcher:
        from labrun.recording.dispatcher import Dispatcher, RunId
        from labrun.recording.journal import Journal, journal_root, undelivered

        run = self.run
        left = undelivered(exclude=run.uid)
        if left:
            logger.warning("%d journal%s of earlier runs %s not fully delivered (in %s); 'labrun sync' will "
                           "deliver them", len(left), "s" if len(left) > 1 else "", "were" if len(left) > 1 else
                           "was", journal_root())
        self.journal = Journal(run.uid)
        naming = [getattr(observer, "names_runs", True) for observer in run.observers]
        self.dispatcher = Dispatcher(run.observers, self.journal, RunId(run._id, len(run.observers), naming))
        # The observers, by URL, so that `labrun sync` can finish delivering a run that was killed.
        self.journal.append([events.started(run.start_record(), self.dispatcher.observers_by_url())])
        self.dispatcher.start()
        # Copied now, so edits made while the run goes on do not count; sent after `started`, so observers
        # name the run without first storing every source file.
        sources = self._copy_sources(run.source_entries)
        if sources:
            self.journal.append([events.sources(sources)])
        return self.dispatcher

    @property
    def _journal(self) -> Journal:
        assert self.journal is not None, "the recording is not open"
        return self.journal

    # -- while the run goes on -------------------------------------------------------------------------------
    def artifact(self, filename: str, name: str, metadata: Any, content_type: str | None) -> None:
        """Copy the file into the journal now (later changes to it do not count) and journal the artifact."""
        copy = self._journal.store_file(filename, name)
        self._journal.append([events.artifact(name, copy, metadata, content_type)])

    def resource(self, path: str, md5: str) -> None:
        copy = self._journal.store_file(path, os.path.basename(path))
        self._journal.append([events.resource(path, md5, copy)])

    def location(self) -> str:
        """Where the stores keep the run, as a user types it (``runs/7``), for the line printed at its start."""
        places = [o.run_location(self.run._id) for o in self.run.observers if hasattr(o, "run_location")]
        return ", ".join(p for p in places if p)

    def _stored_output(self, text: str) -> str:
        """``text`` as it is stored: through the experiment's ``captured_out_filter``, and kept in
        ``run.captured_out``. The filter sees whole lines (a chunk ends at a line end, except the last)."""
        if text and self.run.captured_out_filter is not None:
            text = self.run.captured_out_filter(text)
        self.run.captured_out += text
        return text

    def heartbeat(self) -> events.Event:
        """The heartbeat event the recorder writes: info, the output since the last beat, the result so far."""
        output = self._stored_output(self.output.take_output()) if self.output else ""
        return events.heartbeat(storable(self.run.info), output, storable(self.run.result), iso(utcnow()))

    # -- the end ---------------------------------------------------------------------------------------------
    def finish(self) -> None:
        """Stop capturing and recording, journal late sources and the end, and end the delivery."""
        run = self.run
        output = ""
        if self.output is not None:
            self.output.stop()
            if run.fail_trace:  # printed by the command line after this; stored as the terminal shows it
                self.output.text.feed("".join(run.fail_trace), 2)
            output = self._stored_output(self.output.text.take_all())
        if self.recorder is not None:
            self.recorder.stop()
        if run.provenance is not None:
            late = self._copy_sources(run.late_source_entries())
            if late:
                self._journal.append([events.sources(late)])
        self._journal.append([events.ended(run.status or "FAILED", iso(run.stop_time or utcnow()),
                                           storable(run.result), run.fail_trace, storable(run.info), output)])
        self._end_delivery()

    def _copy_sources(self, entries: list[dict[str, str]]) -> list[dict[str, str]]:
        """Copy source files into the journal: what observers store is the code as it was when the run began."""
        stored = []
        for entry in entries:
            try:
                copy = self._journal.store_file(entry["abspath"], f"{entry['md5']}-{os.path.basename(entry['path'])}")
            except OSError:
                continue  # deleted since it was imported
            stored.append({"path": entry["path"], "md5": entry["md5"], "stored": copy})
        return stored

    def _end_delivery(self) -> None:
        """Wait (bounded; a Ctrl-C ends the wait) until the journal is written and the observers confirmed it.
        Then remove the journal, or keep it and hand the rest to a background delivery (or to `labrun sync`)."""
        from labrun.recording.background import deliver_in_background

        journal, dispatcher, run = self._journal, self.dispatcher, self.run
        assert dispatcher is not None
        timeout = float(os.environ.get(DELIVERY_TIMEOUT_ENV, DEFAULT_DELIVERY_TIMEOUT))
        with _sigint_hurries() as hurry:
            self._wait_journal_written(time.monotonic() + timeout, hurry)
            journal.close()
            behind = dispatcher.finish(timeout, hurry)
        run._id = dispatcher.run_id.value if run._id is None else run._id
        run.stores_behind = behind
        if not behind:
            journal.remove()
            return
        try:
            journal.keep(dispatcher.progress())
        except OSError as exc:  # a full disk: sync then treats it as a killed run's journal, which it can deliver
            logger.error("could not write %s/delivered.json (%s)", journal.folder, exc)
        failing = dispatcher.failing()
        why = "interrupted" if hurry.is_set() else "failing" if len(failing) == len(behind) else \
            f"slower than {timeout:.0f} s" if not failing else f"failing: {', '.join(failing)}"
        names = ", ".join(behind)
        started = deliver_in_background(journal.folder, dispatcher.urls())
        if started is not None:
            logger.warning("observer%s %s did not confirm everything yet (%s); delivery goes on in the background "
                           "(pid %d, log: %s). If that cannot finish, 'labrun sync' delivers what is left in %s",
                           "s" if len(behind) > 1 else "", names, why, started[0], started[1], journal.folder)
        else:
            logger.warning("observer%s %s did not confirm everything (%s); what is missing stays in the journal "
                           "%s: run 'labrun sync' to deliver it", "s" if len(behind) > 1 else "", names, why,
                           journal.folder)

    def _wait_journal_written(self, deadline: float, hurry: threading.Event) -> None:
        """Events still in memory because the journal's disk was full get until ``deadline`` to be written."""
        journal = self._journal
        while not journal.retry() and time.monotonic() < deadline and not hurry.is_set():
            hurry.wait(0.5)
        if journal.behind:
            logger.error("the run's journal in %s could not be written (%s): its last %d events, the end of the "
                         "run included, are lost; the stores show the run as it was before", journal.folder,
                         journal.write_error, journal.behind)
        if journal.dropped_points:
            logger.error("%d metric points were dropped while the run's journal in %s was not writable",
                         journal.dropped_points, journal.folder)


@contextlib.contextmanager
def _sigint_hurries() -> Iterator[threading.Event]:
    """While the run's end waits for its observers, Ctrl-C ends the wait (the rest goes to the background
    delivery) instead of leaving the stores behind with nothing to say so."""
    hurry = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield hurry
        return

    def on_sigint(signum: int, frame: Any) -> None:
        hurry.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield hurry
    finally:
        signal.signal(signal.SIGINT, previous)

