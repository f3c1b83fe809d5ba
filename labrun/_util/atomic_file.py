"""Writing files so that a reader, or a crash, never sees half of one."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import IO, Any, Callable, Iterable, Iterator


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: a new file readable and writable by its owner only (0600)."""
    return os.open(path, flags, 0o600)


def make_private_dir(path: str) -> None:
    """A folder only its owner can enter (0700), created if needed, tightened if it was not."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", private: bool = False) -> Iterator[IO[Any]]:
    """A file to write that replaces ``path`` only once complete: temporary file, fsync, rename.

    If the block raises, ``path`` is left as it was and the temporary file is removed. ``private`` makes the
    file readable by its owner only.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8",
                  opener=private_opener if private else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_atomic(path: str, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json_atomic(path: str, value: Any, private: bool = False) -> None:
    with atomic_open(path, private=private) as f:
        f.write(json.dumps(value, indent=2, default=str) + "\n")


def append_whole(f: IO[bytes], pieces: Iterable[bytes | memoryview]) -> int:
    """Append ``pieces`` to ``f`` (a file opened unbuffered for appending: ``open(path, "ab", buffering=0)``)
    entirely or not at all.

    A write that fails part-way (a full disk) would leave a cut line that every later append makes
    unreadable: the file is truncated back to where it ended before, and the error raised (truncating frees
    blocks, so it works on a full disk). Returns the number of bytes appended.
    """
    fd = f.fileno()
    start = os.lseek(fd, 0, os.SEEK_END)
    size = 0
    try:
        for piece in pieces:
            view = memoryview(piece)
            while view:  # a large write may be taken in part
                written = os.write(fd, view)
                view = view[written:]
                size += written
        return size
    except BaseException:
        with contextlib.suppress(OSError):
            os.truncate(fd, start)
        raise


def claim_folder(parent: str, _id: Any, explicit: bool, name_of: Callable[[Any], str],
                 number_in: Callable[[str], int | None]) -> tuple[str, Any]:
    """Create a run's folder in ``parent`` and return it with the run's id. ``_id``'s folder when given and
    free; else the next number after the highest that ``number_in`` finds among the entries. ``mkdir`` is
    the claim: two processes never get the same folder. A taken ``_id`` the user chose (``explicit``) is an
    error; one another store chose falls back to the next number."""
    os.makedirs(parent, exist_ok=True)
    if _id is not None:
        path = os.path.join(parent, name_of(_id))
        try:
            os.mkdir(path)
            return path, _id
        except FileExistsError:
            if explicit:
                raise FileExistsError(f"run folder {path} exists already; choose another --id") from None
            logging.getLogger("labrun").warning("run folder %s exists already; this run is stored there under a "
                                                "new number", path)
    while True:
        numbers = [n for n in map(number_in, os.listdir(parent)) if n is not None]
        candidate = max(numbers, default=0) + 1
        path = os.path.join(parent, name_of(candidate))
        try:
            os.mkdir(path)
            return path, candidate
        except FileExistsError:
            continue  # another run claimed it first: take the next one
