"""The run journal: an append-only local file that every event reaches before any observer sees it.

Layout of one run's journal folder (``<journal root>/<uid>/``, see docs/journal.md):

    events.jsonl    one JSON object per line: {"seq": n, "type": ..., ...}
    files/          copies of artifacts and resources, so deleting the originals loses nothing
    delivered.json  per observer, its URL, the id it gave the run and the byte offset it confirmed (written
                    at the end, when some observer is behind)

Metrics and output are buffered in memory and written by the recorder thread in batches; the training
thread writes only the events of its own calls that store a file (``add_artifact``, ``add_resource``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
from collections import deque
from typing import Any, Iterator

from labrun._util.atomic_file import append_whole, make_private_dir, private_opener, write_json_atomic
from labrun._util.env_vars import JOURNAL_DIR_ENV, JOURNAL_MEMORY_ENV
from labrun.recording.metric_codec import POINT_CHARS, split_points

DEFAULT_MEMORY_MB = 512  # events held while the journal's disk is full: ~16M metric points
logger = logging.getLogger("labrun")


def journal_root() -> str:
    """``$LABRUN_JOURNAL_DIR``, else ``$XDG_STATE_HOME/labrun/journal``, else ``~/.local/state/labrun/journal``."""
    if os.environ.get(JOURNAL_DIR_ENV):
        return os.environ[JOURNAL_DIR_ENV]
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "labrun", "journal")


def undelivered(root: str | None = None, exclude: str | None = None, live_too: bool = False) -> list[str]:
    """Journal folders that some observer has not confirmed, without those a living process holds (runs
    going on now, deliveries under way) unless ``live_too``."""
    root = root or journal_root()
    try:
        folders = sorted(e.path for e in os.scandir(root) if e.is_dir() and e.name != exclude)
    except FileNotFoundError:
        return []
    return folders if live_too else [folder for folder in folders if not in_use(folder)]


class Journal:
    """Appends events for one run and tells readers how far it is safely written.

    A write that fails (a full disk) loses nothing and stops nothing: the events wait in memory, in order,
    and every later append (the recorder's, ten times a second) tries them again, so the journal catches up
    as soon as there is room. Memory is bounded by ``$LABRUN_JOURNAL_MEMORY_MB``: past it, the oldest waiting
    metric batches are dropped, counted and reported, never silently; other events are always kept.
    """

    def __init__(self, uid: str, root: str | None = None):
        self.uid = uid
        self.folder = os.path.join(root or journal_root(), uid)
        # Private to the user (0700 folders, 0600 files): a journal holds the config, the output and copies
        # of sources and artifacts.
        for folder in (os.path.dirname(self.folder), self.folder, os.path.join(self.folder, "files")):
            make_private_dir(folder)
        self.path = os.path.join(self.folder, "events.jsonl")
        # Unbuffered: append_whole truncates a failed write back, which a buffer would write again later.
        self._file = open(self.path, "ab", buffering=0, opener=private_opener)
        lock_file(self._file)  # held while the run lives: `labrun sync` tells a killed run's journal by it
        self._lock = threading.Lock()
        self._seq = 0
        self.committed = 0  # bytes that readers may read: whole lines only
        self.points = 0  # metric points written (what the end-of-run progress counts)
        self.changed = threading.Condition()
        self.closed = False
        self._waiting: deque[tuple[tuple[bytes | memoryview, ...], int]] = deque()  # (pieces, points)
        self._waiting_bytes = 0
        self.dropped_points = 0
        self.write_error: OSError | None = None  # the error of the last failed write, None once caught up
        self._memory_limit = int(float(os.environ.get(JOURNAL_MEMORY_ENV, DEFAULT_MEMORY_MB)) * (1 << 20))

    def append(self, events: list[dict[str, Any] | tuple[bytes | memoryview, ...]]) -> None:
        """Write events as whole lines (or keep them in memory while the disk refuses) and wake the readers.

        An event is a dict, or the JSON text of an object in pieces (how the recorder hands over metric
        batches: json.dumps would scan every base64 character, and joining the pieces would copy them);
        either way it gets the next ``seq``.
        """
        with self._lock:
            for event in events:
                self._seq += 1
                if isinstance(event, dict):
                    event["seq"] = self._seq
                    line: tuple[bytes | memoryview, ...] = (json.dumps(event, separators=(",", ":")).encode("utf-8"),
                                                            b"\n")
                    points = 0
                else:
                    line = (b'{"seq":%d,' % self._seq, memoryview(event[0])[1:], *event[1:], b"\n")
                    points = len(event[1]) // POINT_CHARS
                self._waiting.append((line, points))
                self._waiting_bytes += sum(len(piece) for piece in line)
            written = self._write_waiting()
        if written:
            with self.changed:
                self.changed.notify_all()

    @property
    def behind(self) -> int:
        """Events waiting in memory for room on the disk."""
        return len(self._waiting)

    def retry(self) -> bool:
        """Try the waiting events again; True when none is left."""
        self.append([])
        return not self._waiting

    def _write_waiting(self) -> int:
        """Write the waiting events in order, each whole or not at all; the bytes written."""
        total = 0
        while self._waiting:
            line, points = self._waiting[0]
            try:
                size = append_whole(self._file, line)
            except OSError as exc:
                self._failed(exc)
                break
            self._waiting.popleft()
            self._waiting_bytes -= size
            self.committed += size
            self.points += points
            total += size
        if total and not self._waiting and self.write_error is not None:
            self.write_error = None
            logger.warning("the run's journal in %s is written again; nothing was lost%s", self.folder,
                           f" but the {self.dropped_points} points reported" if self.dropped_points else "")
        return total

    def _failed(self, exc: OSError) -> None:
        if self.write_error is None:
            logger.error("cannot write the run's journal in %s (%s); the run goes on and its events wait in "
                         "memory (up to %d MB, $%s) until there is room: free space on that disk, or set $%s "
                         "to a disk with room for the next runs", self.folder, exc.strerror or exc,
                         self._memory_limit >> 20, JOURNAL_MEMORY_ENV, JOURNAL_DIR_ENV)
        self.write_error = exc
        dropped = 0
        while self._waiting_bytes > self._memory_limit:
            oldest = next((k for k, (_, points) in enumerate(self._waiting) if points), None)
            if oldest is None:
                break  # only events that are never dropped are left
            line, points = self._waiting[oldest]
            del self._waiting[oldest]
            self._waiting_bytes -= sum(len(piece) for piece in line)
            dropped += points
        if dropped:
            self.dropped_points += dropped
            logger.error("the run's journal in %s is still not writable and the events waiting for it passed "
                         "%d MB: dropped the %d oldest waiting metric points (%d so far)", self.folder,
                         self._memory_limit >> 20, dropped, self.dropped_points)

    def store_file(self, source: str, name: str) -> str:
        """Copy a file into the journal (so later changes to the original do not matter); its new path."""
        target = os.path.join(self.folder, "files", f"{self._seq:08d}-{os.path.basename(name)}")
        try:
            with open(source, "rb") as original, open(target, "wb", opener=private_opener) as copy:
                shutil.copyfileobj(original, copy)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(target)
            raise OSError(exc.errno, f"cannot copy {source} into the run's journal in {self.folder} "
                                     f"({exc.strerror}); free space on that disk, or set ${JOURNAL_DIR_ENV} to a disk "
                                     f"with room") from exc
        return target

    def close(self) -> None:
        """No more events (any still waiting for room on the disk are lost: ``retry`` first). Not synced to
        disk here: most journals are removed a moment later."""
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


def lock_file(file: Any, blocking: bool = True) -> bool:
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
            return not lock_file(f, blocking=False)
    except FileNotFoundError:
        return False


def write_delivered(folder: str, observers: list[dict[str, Any]]) -> None:
    """Per observer: ``observer`` (its name), ``url`` (credentials redacted; None for one added as an object),
    ``offset`` (bytes of events.jsonl it confirmed) and ``id`` (the id it stored the run under)."""
    write_json_atomic(os.path.join(folder, DELIVERED), {"observers": observers}, private=True)


READ_CHUNK = 4 << 20  # bytes a reader holds at once (more only for a single longer line)


def read_events(path: str, offset: int, limit: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every whole event between byte ``offset`` and ``limit``, each with the offset just after it, read
    ``READ_CHUNK`` bytes at a time. A last line without its newline (cut by a crash) is not read; a damaged
    line inside the journal is skipped with a warning.

    A metrics event's ``points`` is a memoryview of the base64 text as read: a batch can be several MB, and
    json.loads would scan it and copy it into a str."""
    with open(path, "rb") as f:
        f.seek(offset)
        while offset < limit:
            data = f.read(min(limit - offset, READ_CHUNK))
            last = data.rfind(b"\n")
            while last < 0 and len(data) < limit - offset:  # one line longer than a chunk
                more = f.read(min(limit - offset - len(data), READ_CHUNK))
                if not more:
                    break
                last = len(data) + more.rfind(b"\n") if b"\n" in more else -1
                data += more
            if last < 0:
                return
            yield from _parse_lines(path, data, last + 1, offset)
            offset += last + 1
            f.seek(offset)


def _parse_lines(path: str, data: bytes, size: int, offset: int) -> Iterator[tuple[int, dict[str, Any]]]:
    start = 0
    while start < size:
        end = data.index(b"\n", start)
        split = split_points(data, start, end)
        try:
            event = {**split[0], "points": split[1]} if split is not None and split[0].get("type") == "metrics" \
                else json.loads(data[start:end])
        except ValueError:
            logger.warning("%s: the line at byte %d is damaged; skipped", path, offset + start)
            event = None
        if event is not None:
            yield offset + end + 1, event
        start = end + 1


def whole_size(path: str) -> int:
    """Bytes of ``path`` up to the end of its last whole line: a line cut by a crash or a full disk is not
    an event, and is never delivered."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        end = size
        while end > 0:
            start = max(0, end - READ_CHUNK)
            f.seek(start)
            last = f.read(end - start).rfind(b"\n")
            if last >= 0:
                return start + last + 1
            end = start
    return 0
