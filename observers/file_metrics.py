"""The file store's metric files: ``metrics.jsonl`` appended while the run goes on, and Sacred's
``metrics.json`` rendered from it when the run ends.

``metrics.jsonl`` holds one batch per line, ``{"name": ..., "points": B64}`` (the journal's encoding, see
docs/journal.md), so appending costs no formatting and a crash loses at most
the line being written. ``metrics.json`` is rendered batch by batch into a scratch file, then assembled in
Sacred's field order: memory stays flat however many points a run logs.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator, Mapping

from labrun.atomic_file import atomic_open
from labrun.metric_codec import FIELDS, Series, decode, encode, new_series
from labrun.timestamps import iso_json_items

JSONL = "metrics.jsonl"
RENDER_POINTS = 20_000  # points rendered at once: a few MB of text, however large the stored batches


def append_batches(run_dir: str, metrics: Mapping[str, Mapping[str, Any]]) -> None:
    """Append one line per metric; batches that came from the journal are written as they came, in pieces
    rather than one formatted copy (a batch can be several MB)."""
    with open(os.path.join(run_dir, JSONL), "a", encoding="utf-8") as f:
        for name, series in metrics.items():
            f.write('{"name":%s,"points":"' % json.dumps(name))
            f.write(encode(series))
            f.write('"}\n')


def _batches(run_dir: str) -> Iterator[tuple[str, Series]]:
    """Every whole batch in metrics.jsonl; a line cut short by a crash ends the reading."""
    path = os.path.join(run_dir, JSONL)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            batch = json.loads(line)
            yield batch["name"], decode(batch["points"])


def read_metrics(run_dir: str) -> dict[str, Series]:
    """Every recorded point, by metric (also after the run was killed)."""
    merged: dict[str, Series] = {}
    for name, batch in _batches(run_dir):
        series = merged.setdefault(name, new_series())
        for field in FIELDS:
            series[field].extend(batch[field])
    return merged


def _render(field: str, values: Any) -> str:
    """A batch's field as comma-separated JSON items, each kind by its fastest C-level path."""
    if field == "timestamps":
        return iso_json_items(values)
    if field == "steps":
        return ("%d," * len(values) % tuple(values))[:-1]
    return json.dumps(values.tolist())[1:-1]


def write_metrics_json(run_dir: str) -> None:
    """Render metrics.jsonl as Sacred's metrics.json, written atomically.

    Each batch is rendered once into a scratch file; an index of (offset, length) per metric and field then
    lets the pieces be copied out in Sacred's order (all steps, all values, all timestamps, per metric).
    """
    index: dict[str, dict[str, list[tuple[int, int]]]] = {}
    scratch_path = os.path.join(run_dir, ".metrics.json.parts")
    with open(scratch_path, "w+b") as scratch, _removed_after(scratch_path):
        for name, batch in _batches(run_dir):
            pieces = index.setdefault(name, {field: [] for field in FIELDS})
            for field in FIELDS:
                values = batch[field]
                for start in range(0, len(values), RENDER_POINTS):  # bounded: a stored batch may be 250k points
                    data = _render(field, values[start:start + RENDER_POINTS]).encode("ascii")
                    pieces[field].append((scratch.tell(), len(data)))
                    scratch.write(data)
        with atomic_open(os.path.join(run_dir, "metrics.json"), "wb") as out:
            out.write(b"{")
            for n, (name, pieces) in enumerate(index.items()):
                out.write(b'%s\n  %s: {' % (b"," if n else b"", json.dumps(name).encode("utf-8")))
                for m, field in enumerate(FIELDS):
                    out.write(b'%s\n    "%s": [' % (b"," if m else b"", field.encode("ascii")))
                    for k, (offset, length) in enumerate(pieces[field]):
                        scratch.seek(offset)
                        out.write(b"," + scratch.read(length) if k else scratch.read(length))
                    out.write(b"]")
                out.write(b"\n  }")
            out.write(b"\n}\n")


@contextlib.contextmanager
def _removed_after(path: str) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
