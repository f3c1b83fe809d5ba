"""The run journal: an append-only local file that every event reaches before any observer sees it.

Layout of one run's journal folder (``<journal root>/<uid>/``, see docs/journal.md):

    events.jsonl    one JSON object per line: {"seq": n, "type": ..., ...}
    files/          copies of artifacts and resources, so deleting the originals loses nothing
    delivered.json  per observer, its URL, the id it gave the run and the byte offset it confirmed (written
                    at the end, when some observer is behind)

The training thread never touches this file: metrics and output are buffered in memory and written by the
recorder thread in batches.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from typing import Any, Iterator

from labrun.atomic_file import write_json_atomic
from labrun.metric_codec import split_points

ENV_DIR = "LABRUN_JOURNAL_DIR"


def journal_root() -> str:
    """``$LABRUN_JOURNAL_DIR``, else ``$XDG_STATE_HOME/labrun/journal``, else ``~/.local/state/labrun/journal``."""
    if os.environ.get(ENV_DIR):
        return os.environ[ENV_DIR]
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "labrun", "journal")


def undelivered(root: str | None = None, exclude: str | None = None) -> list[str]:
    """Journal folders of earlier runs that some observer has not confirmed."""
    root = root or journal_root()
    try:
        return sorted(e.path for e in os.scandir(root) if e.is_dir() and e.name != exclude)
    except FileNotFoundError:
        return []


class Journal:
    """Appends events for one run and tells readers how far it is safely written."""

    def __init__(self, uid: str, root: str | None = None):
        self.folder = os.path.join(root or journal_root(), uid)
        os.makedirs(os.path.join(self.folder, "files"), exist_ok=True)
        self.path = os.path.join(self.folder, "events.jsonl")
        self._file = open(self.path, "ab")
        _lock(self._file)  # held while the run lives: `labrun sync` tells a killed run's journal by it
        self._lock = threading.Lock()
        self._seq = 0
        self.committed = 0  # bytes that readers may read: whole lines only
        self.changed = threading.Condition()
        self.closed = False

    def append(self, events: list[dict[str, Any] | tuple[bytes | memoryview, ...]]) -> None:
        """Write events as whole lines and wake the readers.

        An event is a dict, or the JSON text of an object in pieces (how the recorder hands over metric
        batches: json.dumps would scan every base64 character, and joining the pieces would copy them);
        either way it gets the next ``seq``.
        """
        if not events:
            return
        with self._lock:
            size = 0
            for event in events:
                self._seq += 1
                if isinstance(event, dict):
                    event["seq"] = self._seq
                    pieces: tuple[bytes | memoryview, ...] = (
                        json.dumps(event, separators=(",", ":")).encode("utf-8"), b"\n")
                else:
                    pieces = (b'{"seq":%d,' % self._seq, memoryview(event[0])[1:], *event[1:], b"\n")
                for piece in pieces:
                    self._file.write(piece)
                    size += len(piece)
            self._file.flush()  # reaches the OS: survives the process being killed
            self.committed += size
        with self.changed:
            self.changed.notify_all()

    def store_file(self, source: str, name: str) -> str:
        """Copy a file into the journal (so later changes to the original do not matter); its new path."""
        target = os.path.join(self.folder, "files", f"{self._seq:08d}-{os.path.basename(name)}")
        shutil.copyfile(source, target)
        return target

    def close(self) -> None:
        """No more events. Not synced to disk here: most journals are removed a moment later."""
        with self._lock:
            self._file.close()
        self.closed = True
        with self.changed:
            self.changed.notify_all()

    def keep(self, observers: list[dict[str, Any]]) -> None:
        """Keep the journal for ``labrun sync``: synced to disk, with what each observer confirmed."""
        with open(self.path, "rb") as f:
            os.fsync(f.fileno())
        write_delivered(self.folder, observers)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


DELIVERED = "delivered.json"


def _lock(file: Any, blocking: bool = True) -> bool:
    """An exclusive advisory lock on an open file, released when the file is closed or its process dies.
    Where there are no such locks (Windows), every journal counts as in use."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def in_use(folder: str) -> bool:
    """Whether a living process still writes the journal in ``folder`` (a killed run's holds no lock)."""
    try:
        with open(os.path.join(folder, "events.jsonl"), "rb") as f:
            return not _lock(f, blocking=False)
    except FileNotFoundError:
        return False


def write_delivered(folder: str, observers: list[dict[str, Any]]) -> None:
    """Per observer: ``observer`` (its name), ``url`` (credentials redacted; None for one added as an object),
    ``offset`` (bytes of events.jsonl it confirmed) and ``id`` (the id it stored the run under)."""
    write_json_atomic(os.path.join(folder, DELIVERED), {"observers": observers})


READ_CHUNK = 4 << 20  # bytes a reader holds at once (more only for a single longer line)


def read_events(path: str, offset: int, limit: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Whole events between byte ``offset`` and ``limit``, each with the offset just after it.

    A metrics event's ``points`` is a memoryview of the base64 text as read: a batch can be several MB, and
    json.loads would scan it and copy it into a str."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(min(limit - offset, READ_CHUNK))
        if b"\n" not in data:
            data += f.read(limit - offset - len(data))
    start = 0
    while (end := data.find(b"\n", start)) >= 0:
        split = split_points(data, start, end)
        if split is not None and split[0].get("type") == "metrics":
            event = {**split[0], "points": split[1]}
        else:
            event = json.loads(data[start:end])
        yield offset + end + 1, event
        start = end + 1
