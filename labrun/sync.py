"""``labrun sync``: deliver what runs left in their journals to the observers that did not confirm it.

A run whose observer was unreachable (a database down, a server slow) keeps its journal with
``delivered.json``: per observer its URL (credentials redacted), the id it gave the run, and how far it got.
Sync rebuilds each such observer from its URL, lets it resume the run (or start it, if it never did), and
replays the rest of the journal. A journal is removed once every observer has confirmed all of it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence

from labrun.dispatcher import deliver_events
from labrun.errors import LabrunError
from labrun.journal import DELIVERED, journal_root, read_events, undelivered, write_delivered
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
    delivered_path = os.path.join(folder, DELIVERED)
    events_path = os.path.join(folder, "events.jsonl")
    if not os.path.exists(delivered_path):
        say(f"run {uid}: still running, or its process was killed before it could say what was delivered; "
            f"left as it is ({folder})")
        return False
    with open(delivered_path, encoding="utf-8") as f:
        observers = json.load(f)["observers"]
    size = os.path.getsize(events_path)
    for entry in observers:
        if entry["offset"] >= size:
            continue
        try:
            entry["offset"], entry["id"] = _replay(entry, events_path, size, urls)
            say(f"run {uid}: delivered to {entry['observer']} ({entry['url']}) as run {entry['id']}")
        except LabrunError as exc:  # our own messages hold no secret
            say(f"run {uid}: {entry['observer']} ({entry['url']}) is still behind: {exc}")
        except Exception as exc:  # report it and go on with the other observers and journals
            say(f"run {uid}: {entry['observer']} ({entry['url']}) is still behind: {type(exc).__name__}: "
                f"{redact_url(str(exc))}")
    if all(entry["offset"] >= size for entry in observers):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return True
    write_delivered(folder, observers)
    return False


def _replay(entry: dict[str, Any], events_path: str, size: int, urls: Sequence[str]) -> tuple[int, Any]:
    """Deliver the journal from the observer's offset; (new offset, id). Progress is kept on a failure too."""
    observer = create_observer(_full_url(entry, urls))
    offset, run_id = entry["offset"], entry["id"]

    def start(record: dict[str, Any]) -> Any:
        nonlocal run_id
        run_id = observer.started(record, run_id)
        return run_id

    if offset > 0:  # it started the run in the run's own process: resume it, then go on from there
        _, started = next(read_events(events_path, 0, size))
        observer.resumed(started["record"], run_id)
    try:
        for offset in deliver_events(observer, events_path, offset, size, start):
            pass
    finally:
        entry["offset"], entry["id"] = offset, run_id
    return offset, run_id


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
