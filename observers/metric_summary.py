"""A long metric's whole curve in a bounded number of points, for the one document per metric that
Omniboard plots (docs/observers/mongodb.md).

The points are cut into at most ``buckets`` runs of equal length; each keeps its first, last, lowest and
highest point. So the first and last points of the metric are kept, and every spike stays visible, in at
most ``4 * buckets`` points. It is built as points arrive: when the buckets are full, neighbours merge and
the run length doubles, so the summary is always exact for its bucket width. Each bucket's extremes are
found by C-level ``min``/``max`` over a slice, so the Python work grows with the number of buckets, not
points.
"""

from __future__ import annotations

from typing import Any, Sequence

Point = tuple[int, float, float, float]  # (index in the metric, step, value, timestamp)
Bucket = tuple[Point, Point, Point, Point]  # first, last, lowest, highest


def _lower(a: Point, b: Point) -> Point:
    return b if b[2] < a[2] else a


def _higher(a: Point, b: Point) -> Point:
    return b if b[2] > a[2] else a


class Summary:
    """The buckets of one metric; ``add`` extends it, ``series`` gives the points to store."""

    def __init__(self, buckets: int = 4096):
        self.max_buckets = buckets
        self.width = 1  # points per full bucket
        self.full: list[Bucket] = []
        self.partial: Bucket | None = None  # the last bucket, with ``filled`` of ``width`` points
        self.filled = 0
        self.count = 0

    def copy(self) -> "Summary":
        other = Summary(self.max_buckets)
        other.width, other.full, other.partial = self.width, list(self.full), self.partial
        other.filled, other.count = self.filled, self.count
        return other

    def add(self, steps: Sequence[float], values: Sequence[float], stamps: Sequence[float]) -> None:
        """Append points (in order) to the summary."""
        start, total = 0, len(values)
        while start < total:
            take = min(total - start, self.width - self.filled)
            piece = _summarise(steps, values, stamps, start, start + take, self.count)
            self.partial = piece if self.partial is None else _merge(self.partial, piece)
            self.filled += take
            self.count += take
            start += take
            if self.filled == self.width:
                self.full.append(self.partial)
                self.partial, self.filled = None, 0
                if len(self.full) >= self.max_buckets:
                    self._halve()

    def _halve(self) -> None:
        """Merge neighbouring buckets: half as many, each twice as long."""
        merged = [_merge(self.full[k], self.full[k + 1]) for k in range(0, len(self.full) - 1, 2)]
        if len(self.full) % 2:  # an odd one out starts the new partial bucket
            self.partial = self.full[-1] if self.partial is None else _merge(self.full[-1], self.partial)
            self.filled += self.width
        self.full = merged
        self.width *= 2

    def series(self) -> dict[str, list[Any]]:
        """The kept points in order: ``{"steps", "values", "timestamps"}``."""
        kept: dict[int, Point] = {}
        for bucket in self.full + ([self.partial] if self.partial is not None else []):
            for point in bucket:
                kept[point[0]] = point
        ordered = [kept[k] for k in sorted(kept)]
        return {"steps": [int(p[1]) for p in ordered], "values": [p[2] for p in ordered],
                "timestamps": [p[3] for p in ordered]}


def _summarise(steps: Sequence[float], values: Sequence[float], stamps: Sequence[float], start: int, end: int,
               base: int) -> Bucket:
    window = values[start:end]
    lo = start + window.index(min(window))
    hi = start + window.index(max(window))

    def point(k: int) -> Point:
        return (base + k - start, steps[k], values[k], stamps[k])

    return point(start), point(end - 1), point(lo), point(hi)


def _merge(a: Bucket, b: Bucket) -> Bucket:
    return a[0], b[1], _lower(a[2], b[2]), _higher(a[3], b[3])
