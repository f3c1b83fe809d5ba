"""Metric batches as compact text: the points of one metric as base64 of little-endian float64 triples.

A batch is one interleaved array ``[step, value, timestamp, step, value, timestamp, ...]``: exactly what
``log_scalar`` appends in one call, so the recorder encodes it without reshaping. Steps travel as doubles
(exact up to 2**53); timestamps are POSIX seconds. Encoding and decoding run in C; docs/journal.md
describes the format for readers in other languages.
"""

from __future__ import annotations

import binascii
import sys
from array import array
from typing import Any, Iterator, Mapping

FIELDS = ("steps", "values", "timestamps")
Series = dict[str, array]  # {"steps": ..., "values": ..., "timestamps": ...}, each an array('d')


def new_series() -> Series:
    return {field: array("d") for field in FIELDS}


def encode_points(points: array) -> str:
    """Interleaved (step, value, timestamp) doubles as base64 text."""
    if sys.byteorder == "big":
        points = array("d", points)
        points.byteswap()
    return binascii.b2a_base64(points.tobytes(), newline=False).decode("ascii")


def decode(text: str) -> Series:
    """A batch's base64 text as three arrays."""
    points = array("d")
    points.frombytes(binascii.a2b_base64(text))
    if sys.byteorder == "big":
        points.byteswap()
    return {field: points[k::3] for k, field in enumerate(FIELDS)}


class EncodedSeries(Mapping[str, array]):
    """A batch as it came from the journal, decoded on first use only.

    Observers read it like a Series; a store that keeps the encoded form (the file store) gets the original
    text back from ``encode`` without decoding and re-encoding every point.
    """

    __slots__ = ("text", "_decoded")

    def __init__(self, text: str):
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


def encode(series: Mapping[str, Any]) -> str:
    """A Series (or an EncodedSeries, passed through) as base64 text."""
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
                  ) -> dict[str, Mapping[str, Any]]:
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
