"""``labrun compare RUN...``: runs side by side, showing what differs. The rows are config entries, each
metric's last, min and max, the result and duration, and the provenance: commit, Python, host, GPUs and
packages whose versions differ."""

from __future__ import annotations

import json
import sys
from typing import IO, Any, Sequence

from labrun.browse.ls import metric_names
from labrun.errors import LabrunError
from labrun.readback.query import flatten, gpus_of, short_commit
from labrun._util.table import duration, render_table, use_color

Row = tuple[str, list[Any]]


def _differs(values: Sequence[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1


def comparison(runs: Sequence[Any], all_config: bool = False) -> list[tuple[str, list[Row]]]:
    """The sections of the comparison, each a list of (label, one value per run)."""
    sections: list[tuple[str, list[Row]]] = []
    summary: list[Row] = [("status", [r.status for r in runs])]
    if _differs([r.experiment for r in runs]):
        summary.append(("experiment", [r.experiment for r in runs]))
    summary += [("result", [r.result for r in runs]), ("duration", [duration(r.duration) for r in runs])]
    sections.append(("run", summary))

    flat = [flatten(r.config) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    config = [(k, [f.get(k) for f in flat]) for k in keys]
    sections.append(("config" if all_config else "config that differs",
                     [row for row in config if all_config or _differs(row[1])]))

    metrics: list[Row] = []
    for name in metric_names(runs):
        for stat in ("last", "min", "max"):
            metrics.append((f"{name} ({stat})", [(r.metric_stats.get(name) or {}).get(stat) for r in runs]))
    sections.append(("metrics", metrics))

    provenance: list[Row] = [
        ("commit", [_commit(r) for r in runs]),
        ("python", [r.host.get("python_version") for r in runs]),
        ("host", [r.host.get("hostname") for r in runs]),
        ("cpu", [r.host.get("cpu") for r in runs]),
        ("gpus", [", ".join(g.get("model", "?") for g in gpus_of(r)) or "none" for r in runs]),
    ]
    packages = [_packages(r) for r in runs]
    names = sorted({name for p in packages for name in p})
    drift = [(f"package {name}", [p.get(name, "-") for p in packages]) for name in names
             if _differs([p.get(name, "-") for p in packages])]
    rows = [row for row in provenance if _differs(row[1])] + drift
    sections.append(("provenance that differs", rows or [("(nothing differs)", ["" for _ in runs])]))
    return sections


def compare_runs(runs: Sequence[Any], all_config: bool = False, out: IO[str] = sys.stdout) -> int:
    """Print the comparison; the exit status."""
    if len(runs) < 2:
        raise LabrunError(f"compare needs two runs or more, got {len(runs)}; name them as runs/7 runs/9, "
                          f"STORE 7 9, or STORE --where ...")
    headers = ["", *(f"run {r.id}" for r in runs)]
    rows: list[list[Any]] = []
    for title, section in comparison(runs, all_config):
        if section:
            rows.append([f"[{title}]", *("" for _ in runs)])
            rows += [[f"  {label}", *values] for label, values in section]
    stores = ", ".join(sorted({r.store for r in runs}))
    out.write(f"{len(runs)} runs of {', '.join(sorted({str(r.experiment) for r in runs}))} in {stores}\n"
              f"{render_table(headers, rows, color=use_color(out))}\n")
    return 0


def _commit(run: Any) -> str | None:
    repositories = (run.record.get("experiment") or {}).get("repositories") or []
    return short_commit(repositories[0]) if repositories else None


def _packages(run: Any) -> dict[str, str]:
    """``{name: version}`` of the installed distributions (``name==version`` entries)."""
    found = (run.record.get("environment") or {}).get("distributions") or \
        (run.record.get("experiment") or {}).get("dependencies") or []
    return dict(entry.split("==", 1) for entry in found if isinstance(entry, str) and "==" in entry)
