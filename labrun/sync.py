"""``labrun sync``: deliver what runs left in their journals to the observers that did not confirm it.

A run whose observer was unreachable (a database down, a server slow) keeps its journal with
``delivered.json``: per observer its URL (credentials redacted), the id it gave the run, and how far it got.
Sync rebuilds each such observer from its URL, lets it resume the run (or start it, if it never did), and
replays the rest of the journal. A killed run's journal has no ``delivered.json`` and no lock held on it:
its observers, named in its started event, are asked whether they hold the run (by uid) and get the whole
journal, skipping what they have. A journal is removed once every observer has confirmed all of it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence

from labrun.dispatcher import deliver_events
from labrun.errors import LabrunError
from labrun.journal import DELIVERED, in_use, journal_root, read_events, undelivered, write_delivered
from labrun.observer_registry import create_observer
from labrun.redact import redact_url


def sync(root: str | None = None, urls: Sequence[str] = (), say: Callable[[str], None] = print) -> int:
    """Sync every kept journal under ``root``; ``urls`` supply credentials that journals hold redacted.
    The exit status: 0 when everything was delivered, 1 when something is still behind."""
    root = root or journal_root()
    folders = undelivered(root)
    if not folders:
        say(f"Nothing to sync: no journal is waiting in {root}.")
        return 0
    behind = 0
    for folder in folders:
        behind += not sync_journal(folder, urls, say)
    return 1 if behind else 0


def sync_journal(folder: str, urls: Sequence[str], say: Callable[[str], None]) -> bool:
    """Deliver one journal; True when nothing is left (the journal is then removed)."""
    uid = os.path.basename(folder)
    events_path = os.path.join(folder, "events.jsonl")
    ended = os.path.exists(os.path.join(folder, DELIVERED))  # written when the run ends
    if not ended and in_use(folder):
        say(f"run {uid}: still running; left as it is")
        return False
    try:
        size = os.path.getsize(events_path)
        _, started = next(read_events(events_path, 0, size))
    except (OSError, StopIteration):
        say(f"run {uid}: its journal holds no event; left as it is ({folder})")
        return False
    observers = _delivered(folder) if ended else _killed_run_observers(started)
    if observers is None:
        say(f"run {uid}: its journal does not name its observers (written by an older labrun); left as it is")
        return False
    for entry in observers:
        if entry["offset"] >= size:
            continue
        try:
            _replay(entry, started["record"], events_path, size, urls)
            say(f"run {uid}: delivered to {entry['observer']} ({entry['url']}) as run {entry['id']}")
        except LabrunError as exc:  # our own messages hold no secret
            say(f"run {uid}: {entry['observer']} ({entry['url']}) is still behind: {exc}")
        except Exception as exc:  # report it and go on with the other observers and journals
            say(f"run {uid}: {entry['observer']} ({entry['url']}) is still behind: {type(exc).__name__}: "
                f"{redact_url(str(exc))}")
    if not ended and not any(event["type"] == "ended" for _, event in read_events(events_path, 0, size)):
        say(f"run {uid}: its process was killed; what it recorded until then is delivered, and the stores show "
            f"it as {started['record']['status']} with its last heartbeat")
    if all(entry["offset"] >= size for entry in observers):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return True
    write_delivered(folder, observers)
    return False


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
            urls: Sequence[str]) -> None:
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
            entry["id"] = observer.started(started_record, entry["id"])
        return entry["id"]

    for entry["offset"] in deliver_events(observer, events_path, entry["offset"], size, start):
        pass


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
