"""The file store's ``metrics.jsonl``: its format, and reading it back. The store (observers/file_metrics.py)
appends to it; ``labrun ls/show/plot`` and ``labrun rerun`` read it through here, so the read path does not
import the store's write side.

One batch per line, ``{"name": ..., "points": B64}`` (the journal's encoding, see docs/journal.md), so
appending costs no formatting and a crash loses at most the line being written.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Iterator

from labrun.recording.metric_codec import FIELDS, POINT_CHARS, Series, decode, new_series, split_points

JSONL = "metrics.jsonl"
logger = logging.getLogger("labrun.file_store")


def batches(run_dir: str) -> Iterator[tuple[str, bytes | memoryview | str]]:
    """Every whole batch in metrics.jsonl, its points still base64. A line cut short (a process killed
    mid-write; a full disk under labrun before 0.4, whose retried batch then followed on the same line) is
    skipped with a warning: the points of every whole line are still read."""
    path = os.path.join(run_dir, JSONL)
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            batch = _parse_batch(line)
            if batch is None:
                logger.warning("%s: line %d is cut short or damaged; skipped (the other lines are read)", path,
                               number)
                continue
            yield batch


def _parse_batch(line: bytes) -> tuple[str, bytes | memoryview | str] | None:
    """A metrics.jsonl line as (name, base64 points), or None when it is not a whole batch."""
    if not line.endswith(b"\n"):
        return None
    split = split_points(line, 0, len(line) - 1)
    if split is not None:
        return (split[0]["name"], split[1]) if "name" in split[0] and len(split[1]) % POINT_CHARS == 0 else None
    try:
        batch = json.loads(line)
        return batch["name"], batch["points"]
    except (ValueError, KeyError, TypeError):
        return None


def read_metrics(run_dir: str) -> dict[str, Series]:
    """Every recorded point, by metric (also after the run was killed)."""
    merged: dict[str, Series] = {}
    for name, text in batches(run_dir):
        series = merged.setdefault(name, new_series())
        batch = decode(text)
        for field in FIELDS:
            series[field].extend(batch[field])
    return merged
