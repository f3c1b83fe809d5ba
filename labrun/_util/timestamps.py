"""Sacred's time format, naive ISO-8601 in UTC, for one moment and for many metric timestamps at once."""

from __future__ import annotations

import bisect
import datetime as _dt
import math
from typing import Sequence


def utcnow() -> _dt.datetime:
    """Now, as an aware UTC datetime."""
    return _dt.datetime.now(_dt.timezone.utc)


def iso(moment: float | _dt.datetime) -> str:
    """One moment (POSIX seconds or an aware datetime) as Sacred writes it."""
    if not isinstance(moment, _dt.datetime):
        moment = _dt.datetime.fromtimestamp(moment, _dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).replace(tzinfo=None).isoformat()


def posix(iso_text: str) -> float:
    """Sacred's naive UTC ISO text back to POSIX seconds."""
    return _dt.datetime.fromisoformat(iso_text).replace(tzinfo=_dt.timezone.utc).timestamp()


def iso_json_items(stamps: Sequence[float]) -> bytes:
    """POSIX timestamps as JSON strings in ISO format with microseconds, each followed by a comma (ASCII).

    Formatting points one by one costs ~0.6 us each; instead each second's prefix is formatted once and
    all points within that second go through a single C-level ``%`` operation (about 4x faster). Metric
    timestamps are sorted unless the clock stepped back; a second whose slice is not, is formatted point by point.
    """
    parts = []
    start, count = 0, len(stamps)
    while start < count:
        second = math.floor(stamps[start])
        end = max(bisect.bisect_left(stamps, second + 1, start), start + 1)
        chunk = stamps[start:end]
        if second <= min(chunk) and max(chunk) < second + 1:
            micros = tuple(map((1e6).__mul__, map(float(second).__rsub__, chunk)))
            parts.append(b'"%s.%%06d",' % iso(float(second)).encode("ascii") * len(chunk) % micros)
        else:
            parts.append("".join(f'"{iso(s)}",' for s in chunk).encode("ascii"))
        start = end
    return b"".join(parts)
