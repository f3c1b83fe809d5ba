"""``labrun sync``: deliver what runs left in their journals to the observers that did not confirm it.

A run whose observer was unreachable (a database down, a server slow) keeps its journal with
``delivered.json``: per observer its URL (credentials redacted), the id it gave the run, and how far it got.
Sync rebuilds each such observer from its URL, lets it resume the run (or start it, if it never did), and
replays the rest of the journal. A killed run's journal has no ``delivered.json`` and no lock held on it:
its observers, named in its started event, are asked whether they hold the run (by uid) and get the whole
journal, skipping what they have. A journal is removed once every observer has confirmed all of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any, Callable, Iterator, Sequence

from labrun._util.atomic_file import private_opener
from labrun.recording.dispatcher import Tally, deliver_events
from labrun.errors import LabrunError
from labrun.recording.journal import (DELIVERED, in_use, journal_root, lock_file, read_events, undelivered, whole_size,
                            write_delivered)
from labrun.recording.metric_codec import POINT_CHARS
from labrun.recording.registry import create_observer
from labrun._util.progress import ProgressLine, rate_and_eta
from labrun._util.redact import redact_url

DONE, BEHIND, LEFT = "delivered", "behind", "left"  # what became of a journal; only BEHIND is retried
SYNC_LOCK = "sync.lock"


def sync(root: str | None = None, urls: Sequence[str] = (), say: Callable[[str], None] = print,
         uids: Sequence[str] = (), retry_for: float = 0.0) -> int:
    """Sync every kept journal under ``root`` (or those of the runs ``uids``) to the end; ``urls`` supply
    credentials that journals hold redacted. Observers still failing are retried, with backoff, for up to
    ``retry_for`` seconds. The exit status: 0 when everything was delivered, 1 when something is still
    behind."""
    from labrun._util.env_vars import SYNC_URLS_ENV

    root = root or journal_root()
    urls = [*urls, *filter(None, os.environ.pop(SYNC_URLS_ENV, "").split("\n"))]
    folders = undelivered(root, live_too=True)  # sync_journal says which are still being written
    if uids:
        missing = [uid for uid in uids if os.path.join(root, uid) not in folders]
        for uid in missing:
            say(f"run {uid}: no journal in {root} (delivered already, or never kept)")
        folders = [folder for folder in folders if os.path.basename(folder) in uids]
    if not folders:
        if not uids:
            say(f"Nothing to sync: no journal is waiting in {root}.")
        return 0
    outcome: dict[str, tuple[str, str]] = {}
    deadline, pause = time.monotonic() + retry_for, 1.0
    pending = folders
    while pending:
        for folder in pending:
            outcome[folder] = sync_journal(folder, urls, say)
        pending = [folder for folder in pending if outcome[folder][0] == BEHIND]
        if not pending or time.monotonic() + pause > deadline:
            break
        say(f"{len(pending)} journal{'s' if len(pending) > 1 else ''} still behind; trying again in {pause:.0f} s")
        time.sleep(pause)
        pause = min(60.0, pause * 2)
    done = [folder for folder, (state, _) in outcome.items() if state == DONE]
    if len(outcome) > 1 or len(done) != len(outcome):
        say(f"Summary: {len(done)} of {len(outcome)} journal{'s' if len(outcome) > 1 else ''} delivered completely.")
        for folder, (state, why) in outcome.items():
            if state != DONE:
                say(f"  run {os.path.basename(folder)}: not complete: {why} (journal: {folder})")
    return 0 if len(done) == len(outcome) else 1


def sync_journal(folder: str, urls: Sequence[str], say: Callable[[str], None]) -> tuple[str, str]:
    """Deliver one journal to the end; (DONE, "") once nothing is left (the journal is then removed), else
    (BEHIND or LEFT, why)."""
    with _sync_lock(folder) as locked:
        if not locked:
            why = f"another 'labrun sync' is delivering it (the background delivery's log: {folder}.log)"
            say(f"run {os.path.basename(folder)}: {why}")
            return LEFT, why
        return _sync_locked(folder, urls, say)


@contextlib.contextmanager
def _sync_lock(folder: str) -> Iterator[bool]:
    """One `labrun sync` at a time per journal: two would deliver the same events to the same store at once."""
    try:
        f = open(os.path.join(folder, SYNC_LOCK), "ab", opener=private_opener)
    except OSError:  # a read-only or full disk: deliver anyway (nothing else can be writing there either)
        yield True
        return
    with f:
        yield lock_file(f, blocking=False)


def _sync_locked(folder: str, urls: Sequence[str], say: Callable[[str], None]) -> tuple[str, str]:
    uid = os.path.basename(folder)
    events_path = os.path.join(folder, "events.jsonl")
    ended = os.path.exists(os.path.join(folder, DELIVERED))  # written when the run ends
    if not ended and in_use(folder):
        say(f"run {uid}: still running; left as it is")
        return LEFT, "the run is still going on"
    try:
        size = whole_size(events_path)
        _, started = next(read_events(events_path, 0, size))
    except (OSError, StopIteration):
        say(f"run {uid}: its journal holds no event; left as it is ({folder})")
        return LEFT, "its journal holds no event"
    if size < os.path.getsize(events_path):
        say(f"run {uid}: its journal ends with a line cut short ({os.path.getsize(events_path) - size} bytes, "
            f"a crash or a full disk); that line is not an event and is skipped")
    observers = _delivered(folder) if ended else _killed_run_observers(started)
    if observers is None:
        say(f"run {uid}: its journal does not name its observers (written by an older labrun); left as it is")
        return LEFT, "its journal does not name its observers"
    reasons = []
    for entry in observers:
        if entry["offset"] >= size:
            continue
        where = f"{entry['observer']} ({entry['url']})"
        try:
            # The id the other stores gave the run: a store started now records it under the same one (MLflow's
            # run name and labrun.run_id tag are then what a live delivery would have given).
            known = next((o["id"] for o in observers if o.get("id") is not None), None)
            _replay(entry, started["record"], events_path, size, urls, uid, known)
            say(f"run {uid}: delivered to {where} as run {entry['id']}")
        except LabrunError as exc:  # our own messages hold no secret
            reasons.append(f"{where}: {exc}")
        except Exception as exc:  # report it and go on with the other observers and journals
            reasons.append(f"{where}: {type(exc).__name__}: {redact_url(str(exc))}")
        if entry["offset"] < size:
            say(f"run {uid}: {where} is still behind ({100 * entry['offset'] // size}% delivered): {reasons[-1]}")
    if not ended and not any(event["type"] == "ended" for _, event in read_events(events_path, 0, size)):
        say(f"run {uid}: its process was killed; what it recorded until then is delivered, and the stores show "
            f"it as {started['record']['status']} with its last heartbeat")
    if all(entry["offset"] >= size for entry in observers):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return DONE, ""
    write_delivered(folder, observers)
    return BEHIND, "; ".join(reasons)


def _delivered(folder: str) -> list[dict[str, Any]]:
    """What each observer confirmed, as the run's process wrote it when the run ended."""
    with open(os.path.join(folder, DELIVERED), encoding="utf-8") as f:
        return json.load(f)["observers"]


def _killed_run_observers(started: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A killed run's observers, named in its started event, none known to have confirmed anything."""
    if "observers" not in started:
        return None
    return [{**observer, "offset": 0, "id": None} for observer in started["observers"]]


def _replay(entry: dict[str, Any], record: dict[str, Any], events_path: str, size: int,
            urls: Sequence[str], uid: str, known_id: Any = None) -> None:
    """Deliver the journal from the observer's offset, keeping its progress in ``entry`` (also on a failure).

    An observer that confirmed the start is resumed under its id. One that confirmed nothing may still hold
    the run (a killed run, or a reply lost): it is looked up by uid first, resumed if found, else started.
    """
    observer = create_observer(_full_url(entry, urls))
    resume_id = entry["id"] if entry["offset"] > 0 else _holding(observer, record)
    if resume_id is not None:
        entry["id"] = resume_id
        observer.resumed(record, resume_id)

    def start(started_record: dict[str, Any]) -> Any:
        if resume_id is None:
            given = entry["id"] if entry["id"] is not None else known_id
            entry["id"] = observer.started(started_record, given)
        return entry["id"]

    tally, line, began = Tally(), ProgressLine(), time.monotonic()
    # Totals are only shown on a terminal: elsewhere (the background delivery's log) the journal is read once.
    total_events, total_points = _count(events_path, entry["offset"], size) if line.enabled else (0, 0)

    def progress() -> str:
        return (f"run {uid[:8]} -> {entry['observer']}: {tally.points:,}/{total_points:,} points, "
                f"{tally.events:,}/{total_events:,} events, "
                f"{rate_and_eta(tally.points, total_points, time.monotonic() - began)}")

    try:
        for offset in deliver_events(observer, events_path, entry["offset"], size, start, tally):
            entry["offset"] = offset
            line.show(progress())
        line.show(progress(), final=True)  # however quick it was, the last state is seen
    finally:
        line.clear()


def _count(path: str, offset: int, size: int) -> tuple[int, int]:
    """Events and metric points in the journal between ``offset`` and ``size``."""
    events = points = 0
    for _, event in read_events(path, offset, size):
        events += 1
        if event["type"] == "metrics":
            points += len(event["points"]) // POINT_CHARS
    return events, points


def _holding(observer: Any, record: dict[str, Any]) -> Any:
    """The id under which the observer's store holds the run already, None if not (or if it cannot tell)."""
    try:
        return observer.find_run(record)
    except NotImplementedError:
        return None


def _full_url(entry: dict[str, Any], urls: Sequence[str]) -> str:
    """The observer's URL with its credentials: from ``--url`` when the journal holds it redacted."""
    url = entry.get("url")
    if not url:
        raise LabrunError(f"observer {entry['observer']} was added as an object, not by URL, so sync cannot rebuild "
                          f"it; add it by URL (-m URL, -o URL) to have its runs synced")
    if "***" not in url:
        return url
    for given in urls:
        if redact_url(given) == url:
            return given
    raise LabrunError(f"the journal keeps {url} without its password; give it: labrun sync --url "
                      f"'{url.replace('***', 'PASSWORD')}'")
