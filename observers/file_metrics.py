"""The file store's metric files: ``metrics.jsonl`` appended while the run goes on (its format and reader:
labrun/stores/metrics_file.py), and Sacred's ``metrics.json`` rendered from it when the run ends.

``metrics.json`` is rendered a slice at a time into a scratch file, then assembled in
Sacred's field order: memory stays flat however many points a run logs.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import IO, Any, Iterator, Mapping

from labrun.stores import metric_stats
from labrun._util.atomic_file import append_whole, atomic_open
from labrun.recording.metric_codec import FIELDS, POINT_CHARS, decode, encode
from labrun.stores.metrics_file import JSONL, batches
from labrun._util.timestamps import iso_json_items

RENDER_POINTS = 4096  # points rendered at once: their temporary objects fit in memory freed by the last slice


def append_batches(run_dir: str, metrics: Mapping[str, Mapping[str, Any]]) -> None:
    """Append one line per metric, all or nothing (a full disk leaves the file as it was, so the retry
    appends to whole lines); batches that came from the journal are written as they came, in pieces rather
    than one formatted copy (a batch can be several MB)."""
    pieces: list[bytes | memoryview] = []
    for name, series in metrics.items():
        pieces += [b'{"name":%s,"points":"' % json.dumps(name).encode("utf-8"), encode(series), b'"}\n']
    with open(os.path.join(run_dir, JSONL), "ab", buffering=0) as f:
        append_whole(f, pieces)


def _render(field: str, values: Any) -> bytes:
    """A slice of a field as JSON items, each followed by a comma, by the fastest C-level path for its kind."""
    if field == "timestamps":
        return iso_json_items(values)
    if field == "steps":
        return b"%d," * len(values) % tuple(values)
    text = b"%a," * len(values) % tuple(values)  # a float's repr, as json writes it, except for these:
    return text.replace(b"nan", b"NaN").replace(b"inf", b"Infinity") if b"n" in text else text


def write_metrics_json(run_dir: str) -> dict[str, dict[str, Any]]:
    """Render metrics.jsonl as Sacred's metrics.json, written atomically; return each metric's summary
    (``metric_stats``), computed in the same pass over the points.

    Each batch is decoded and rendered a slice at a time into a scratch file; an index of (offset, length)
    per metric and field then lets the pieces be copied out in Sacred's order (all steps, all values, all
    timestamps, per metric), by the kernel where it can.
    """
    index: dict[str, dict[str, list[tuple[int, int]]]] = {}
    stats: dict[str, dict[str, Any]] = {}
    scratch_path = os.path.join(run_dir, ".metrics.json.parts")
    with open(scratch_path, "w+b") as scratch, _removed_after(scratch_path):
        for name, text in batches(run_dir):
            pieces = index.setdefault(name, {field: [] for field in FIELDS})
            for start in range(0, len(text), RENDER_POINTS * POINT_CHARS):  # a stored batch may be 250k points
                batch = decode(text[start:start + RENDER_POINTS * POINT_CHARS])
                metric_stats.update(stats, {name: batch})
                for field in FIELDS:
                    data = _render(field, batch[field])
                    pieces[field].append((scratch.tell(), len(data)))
                    scratch.write(data)
        scratch.flush()
        with atomic_open(os.path.join(run_dir, "metrics.json"), "wb") as out:
            out.write(b"{")
            for n, (name, pieces) in enumerate(index.items()):
                out.write(b'%s\n  %s: {' % (b"," if n else b"", json.dumps(name).encode("utf-8")))
                for m, field in enumerate(FIELDS):
                    out.write(b'%s\n    "%s": [' % (b"," if m else b"", field.encode("ascii")))
                    last = len(pieces[field]) - 1
                    for k, (offset, length) in enumerate(pieces[field]):
                        _copy_range(scratch, out, offset, length - (k == last))  # without the last comma
                    out.write(b"]")
                out.write(b"\n  }")
            out.write(b"\n}\n")
    return stats


def _copy_range(source: IO[bytes], target: IO[bytes], offset: int, length: int) -> None:
    """Append ``length`` bytes of ``source`` (flushed) from ``offset`` to ``target``: in the kernel
    (copy_file_range) where it can, with no copy through Python's memory, else through a bounded buffer."""
    target.flush()  # what target buffers goes before what the kernel appends
    while length > 0 and hasattr(os, "copy_file_range"):
        try:
            copied = os.copy_file_range(source.fileno(), target.fileno(), length, offset)
        except OSError:  # not supported by this kernel or file system
            break
        if not copied:
            break
        offset, length = offset + copied, length - copied
    source.seek(offset)
    while length > 0:
        data = source.read(min(length, 1 << 20))
        if not data:
            raise OSError(f"{source.name} ended {length} bytes early")
        target.write(data)
        length -= len(data)


@contextlib.contextmanager
def _removed_after(path: str) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
