"""Metric batches as compact text: each series is three arrays, base64 of little-endian float64.

Steps travel as doubles too (exact up to 2**53), so the training thread stores a point with one call.

Encoding and decoding run in C, so a point costs nanoseconds on its way through the journal and the file
store; docs/journal.md describes the format for readers in other languages.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any

Series = dict[str, array]  # {"steps": ..., "values": ..., "timestamps": ...}, each an array('d')
_TYPECODES = {"steps": "d", "values": "d", "timestamps": "d"}


def new_series() -> Series:
    return {field: array(code) for field, code in _TYPECODES.items()}


def encode(series: Series) -> dict[str, str]:
    out = {}
    for field, values in series.items():
        if sys.byteorder == "big":
            values = array(values.typecode, values)
            values.byteswap()
        out[field] = base64.b64encode(values.tobytes()).decode("ascii")
    return out


def decode(encoded: dict[str, Any]) -> Series:
    out = {}
    for field, code in _TYPECODES.items():
        values = array(code)
        values.frombytes(base64.b64decode(encoded[field]))
        if sys.byteorder == "big":
            values.byteswap()
        out[field] = values
    return out
