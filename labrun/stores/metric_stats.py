"""Each metric's point count, first, last, lowest and highest value and last step, kept by the stores as
points arrive and written into the run's record (``record["labrun"]["metrics"]``), so listing and comparing
runs never reads their points. NaN is left out of min and max; a first or last value of NaN is stored as None.
"""

from __future__ import annotations

from typing import Any, Mapping

RECORD_KEY = "labrun"  # the run record's entry for what labrun adds to Sacred's layout: {"metrics": {...}}
FIELDS = ("count", "first", "last", "min", "max", "last_step")


def _number(value: float) -> float | None:
    return None if value != value else value


def _extremes(values: Any) -> tuple[float, float] | None:
    """Lowest and highest value without NaN, by C-level min/max. Every comparison with NaN is false, so min
    and max pass over a NaN anywhere but first; only a leading NaN needs the slow path."""
    if values[0] == values[0]:
        return min(values), max(values)
    kept = [v for v in values if v == v]
    return (min(kept), max(kept)) if kept else None


def update(stats: dict[str, dict[str, Any]], metrics: Mapping[str, Mapping[str, Any]]) -> None:
    """Fold new points (``{name: {"steps", "values", ...}}``, arrays or lists) into ``stats``, in place."""
    for name, series in metrics.items():
        values, steps = series["values"], series["steps"]
        if not len(values):
            continue
        extremes = _extremes(values)
        entry = stats.get(name)
        if entry is None:
            entry = stats[name] = {"count": 0, "first": _number(values[0]), "last": None, "min": None, "max": None,
                                   "last_step": None}
        entry["count"] += len(values)
        entry["last"] = _number(values[-1])
        entry["last_step"] = int(steps[-1])
        if extremes is not None:
            low, high = extremes
            entry["min"] = low if entry["min"] is None else min(entry["min"], low)
            entry["max"] = high if entry["max"] is None else max(entry["max"], high)


def update_ends(stats: dict[str, dict[str, Any]], metrics: Mapping[str, Mapping[str, Any]]) -> None:
    """Like ``update`` for the count, first, last and last step, reading only each batch's first and last
    point: a store that writes batches still encoded (the file store) does not decode every point for this.
    min and max keep their values until ``update`` sees all points (the file store does at the run's end)."""
    from labrun.recording.metric_codec import POINT_CHARS, EncodedSeries, decode

    for name, series in metrics.items():
        if not isinstance(series, EncodedSeries):
            update(stats, {name: series})
            continue
        count = len(series.text) // POINT_CHARS
        if not count:
            continue
        first, last = decode(series.text[:POINT_CHARS]), decode(series.text[-POINT_CHARS:])
        entry = stats.get(name)
        if entry is None:
            entry = stats[name] = {"count": 0, "first": _number(first["values"][0]), "last": None, "min": None,
                                   "max": None, "last_step": None}
        entry["count"] += count
        entry["last"] = _number(last["values"][0])
        entry["last_step"] = int(last["steps"][0])


def of(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The stats of whole metrics (for runs recorded before stores kept them)."""
    stats: dict[str, dict[str, Any]] = {}
    update(stats, metrics)
    return stats
