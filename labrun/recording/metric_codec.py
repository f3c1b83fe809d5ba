"""Metric batches as compact text: the points of one metric as base64 of little-endian float64 triples.

A batch is one interleaved array ``[step, value, timestamp, step, value, timestamp, ...]``: exactly what
``log_scalar`` appends in one call, so the recorder encodes it without reshaping. Steps travel as doubles
(exact up to 2**53); timestamps are POSIX seconds. Encoding and decoding run in C; docs/journal.md
describes the format for readers in other languages.
"""

from __future__ import annotations

import binascii
import json
import sys
from array import array
from typing import Any, Iterator, Mapping

FIELDS = ("steps", "values", "timestamps")
POINT_CHARS = 32  # base64 characters a point takes: 24 bytes, a multiple of 3, so batches need no padding
Series = dict[str, array]  # {"steps": ..., "values": ..., "timestamps": ...}, each an array('d')


def new_series() -> Series:
    return {field: array("d") for field in FIELDS}


def encode_points(points: array | memoryview) -> bytes:
    """Interleaved (step, value, timestamp) doubles as base64 (ASCII bytes), read in place: no copy."""
    if sys.byteorder == "big":
        swapped = array("d")
        swapped.frombytes(bytes(points))
        swapped.byteswap()
        points = swapped
    return binascii.b2a_base64(points, newline=False)


GIL_SLICE = 8192  # points a C-level step handles at once in a background thread: between steps the training
# thread gets the GIL back, so a large batch never holds the training loop up for more than a few ms


def decode(text: str | bytes | memoryview) -> Series:
    """A batch's base64 text as three arrays, decoded ``GIL_SLICE`` points at a time."""
    series = new_series()
    step = GIL_SLICE * POINT_CHARS
    for start in range(0, len(text), step):
        points = array("d")
        points.frombytes(binascii.a2b_base64(text[start:start + step]))
        if sys.byteorder == "big":
            points.byteswap()
        for k, field in enumerate(FIELDS):
            series[field].extend(points[k::3])
    return series


class EncodedSeries(Mapping[str, array]):
    """A batch as it came from the journal (base64, as bytes or a view of the journal's bytes), decoded on
    first use only.

    Observers read it like a Series; a store that keeps the encoded form (the file store) gets the original
    text back from ``encode`` without decoding and re-encoding every point.
    """

    __slots__ = ("text", "_decoded")

    def __init__(self, text: bytes | memoryview):
        self.text = text
        self._decoded: Series | None = None

    def __getitem__(self, field: str) -> array:
        if self._decoded is None:
            self._decoded = decode(self.text)
        return self._decoded[field]

    def __iter__(self) -> Iterator[str]:
        return iter(FIELDS)

    def __len__(self) -> int:
        return len(FIELDS)


POINTS_MEMBER = b',"points":"'


def split_points(data: bytes, start: int, end: int) -> tuple[dict[str, Any], memoryview] | None:
    """For the JSON object in ``data[start:end]`` whose last member is ``"points"`` (how the journal and the
    file store write batches): its other members, and a view of the base64 text, which is neither scanned
    nor copied. None when the object ends otherwise."""
    key = data.rfind(POINTS_MEMBER, start, end)
    if key < 0 or data[end - 2:end] != b'"}':
        return None
    try:
        head = json.loads(data[start:key] + b"}")
    except ValueError:  # "points" was not a member of the outer object
        return None
    return head, memoryview(data)[key + len(POINTS_MEMBER):end - 2]


def encode(series: Mapping[str, Any]) -> bytes | memoryview:
    """A Series (or an EncodedSeries, passed through) as base64 (ASCII bytes)."""
    if isinstance(series, EncodedSeries):
        return series.text
    count = len(series["steps"])
    points = array("d", bytes(24 * count))
    for k, field in enumerate(FIELDS):
        points[k::3] = array("d", series[field])
    return encode_points(points)


def first_unseen(stamps: Any, until: Any) -> int:
    """Index of the first point newer than ``until`` (a store's newest point before a resume): points of a
    metric come in time order, so those before it reached the store already. 0 when ``until`` is None."""
    if until is None:
        return 0
    return next((k for k, stamp in enumerate(stamps) if stamp > until), len(stamps))


def unseen_points(metrics: Mapping[str, Mapping[str, Any]], stored_until: dict[str, float]
                  ) -> dict[str, Any]:
    """``metrics`` without the points a resumed store holds already (see first_unseen). Once the store has
    written a batch that reached new points, it drops that metric from ``stored_until`` (``caught_up``):
    everything after is new. Both are pure so a failed write can be retried with the same result."""
    kept: dict[str, Mapping[str, Any]] = {}
    for name, series in metrics.items():
        start = first_unseen(series["timestamps"], stored_until.get(name))
        if start < len(series["timestamps"]):
            kept[name] = series if start == 0 else {field: series[field][start:] for field in FIELDS}
    return kept


def caught_up(written: Mapping[str, Any], stored_until: dict[str, float]) -> None:
    """After ``written`` (what unseen_points kept) is stored: those metrics need no more trimming."""
    for name in written:
        stored_until.pop(name, None)
