"""``labrun ls STORE``: one row per run, the columns that tell them apart found automatically."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from typing import IO, Any, Callable, Sequence

from labrun.errors import LabrunError
from labrun._util.progress import is_terminal
from labrun.provenance.system_metrics import PREFIX as SYSTEM_PREFIX
from labrun.readback.query import MISSING, check_keys, flatten, getter, value_of
from labrun.readback.store import no_cyclic_gc
from labrun._util.table import ago, duration, local_time, render_table, use_color

FORMATS = ("table", "csv", "json", "markdown")
FIXED_COLUMNS = ["id", "experiment", "status", "start", "duration", "host", "commit"]
TERMINAL_LIMIT = 50
NEVER_DIFFERING = ("seed",)  # different in nearly every run: shown only when asked for (--columns config.seed)


def differing_config(runs: Sequence[Any]) -> list[str]:
    """The config entries whose values are not the same in every run (missing counts as a value). Top-level
    entries are compared first; only those that differ and hold dicts are looked into."""
    if not runs:
        return []
    configs = [run.config for run in runs]
    first = configs[0]
    order = list(dict.fromkeys(k for c in configs for k in c))
    differing: set[str] = set()
    for config in configs:
        if config == first:
            continue
        for key in order:
            if key not in differing and not _same(config.get(key, MISSING), first.get(key, MISSING)):
                differing.add(key)
    found = []
    for key in order:
        if key not in differing or key in NEVER_DIFFERING:
            continue
        if any(isinstance(c.get(key), dict) for c in configs):
            found += [f"config.{key}.{sub[len(key) + 1:]}" for sub in
                      differing_leaves([flatten({key: c.get(key)}) for c in configs])]
        else:
            found.append(f"config.{key}")
    return found


def differing_leaves(flat: Sequence[dict[str, Any]]) -> list[str]:
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [k for k in keys if any(not _same(f.get(k, MISSING), flat[0].get(k, MISSING)) for f in flat)]


def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b)


def metric_names(runs: Sequence[Any]) -> list[str]:
    """The metrics any run has, without the system metrics (CPU, memory, GPU)."""
    return sorted({name for run in runs for name in run.metric_stats if not name.startswith(SYSTEM_PREFIX)})


def choose_columns(runs: Sequence[Any], columns: str | None) -> list[str]:
    """The default columns (the fixed ones, the differing config entries, each metric's last value, the
    result when it is a number); ``--columns a,b`` replaces those after ``id``, ``--columns +a,b`` adds."""
    automatic = FIXED_COLUMNS + differing_config(runs) + [f"metrics.{m}" for m in metric_names(runs)]
    if any(isinstance(run.result, (int, float)) and not isinstance(run.result, bool) for run in runs):
        automatic.append("result")
    if not columns:
        return automatic
    asked = [c.strip() for c in columns.lstrip("+").split(",") if c.strip()]
    check_keys(asked, runs)
    return automatic + [c for c in asked if c not in automatic] if columns.startswith("+") else ["id", *asked]


def header(column: str) -> str:
    """``config.model.depth`` -> ``model.depth``; ``metrics.loss`` -> ``loss``; ``metrics.loss:min`` stays."""
    if column.startswith("config."):
        return column[len("config."):]
    if column.startswith("metrics.") and ":" not in column:
        return column[len("metrics."):]
    return column


def cell_function(column: str, terminal: bool) -> Callable[[Any], Any]:
    """What the table shows for ``column``: times as "2h ago" on a terminal (local time when piped),
    durations as 0:01:05, nothing for a missing value."""
    value_of_column = getter(column)
    if column not in ("start", "stop", "duration"):
        return lambda run: None if (value := value_of_column(run)) is MISSING else value
    shape: Callable[[Any], Any] = duration if column == "duration" else ago if terminal else local_time
    return lambda run: None if (value := value_of_column(run)) is MISSING else shape(value)


def table_rows(runs: Sequence[Any], columns: Sequence[str], terminal: bool) -> list[Sequence[Any]]:
    """The cells of every row, built a column at a time (a 10,000-run table has 100,000 cells)."""
    built = []
    for column in columns:
        if column.startswith("config.") and ":" not in column:
            parts = column[len("config."):].split(".")
            if len(parts) == 1:  # the usual case, without a call per cell
                key = parts[0]
                built.append([None if (v := run.config.get(key, MISSING)) is MISSING else v for run in runs])
                continue
        if column.startswith("metrics.") and ":" not in column:
            name = column[len("metrics."):]
            built.append([(run.metric_stats.get(name) or {}).get("last") for run in runs])
            continue
        show = cell_function(column, terminal)
        built.append([show(run) for run in runs])
    return list(zip(*built)) if built else [[] for _ in runs]


def list_runs(store_url: str, where: Sequence[str], sort: str | None, columns: str | None, limit: str | None,
              fmt: str | None, out: IO[str] = sys.stdout) -> int:
    """Print the runs of ``store_url``; the exit status."""
    from labrun.readback import open_store

    fmt = fmt or "table"
    if fmt not in FORMATS:
        from labrun._util.suggest import did_you_mean

        raise LabrunError(f"--format takes {', '.join(FORMATS)}, got '{fmt}'{did_you_mean(fmt, FORMATS)}")
    terminal = is_terminal(out)
    try:
        count = int(limit) if limit is not None else (TERMINAL_LIMIT if terminal and fmt == "table" else 0)
    except ValueError:
        raise LabrunError(f"--limit takes a number of runs, got '{limit}'") from None
    store = open_store(store_url)
    try:
        with no_cyclic_gc():
            _print_runs(store, where, sort, columns, count, fmt, terminal, out)
    finally:
        store.close()
    return 0


def _print_runs(store: Any, where: Sequence[str], sort: str | None, columns: str | None, count: int, fmt: str,
                terminal: bool, out: IO[str]) -> None:
    found = store.runs(where=list(where), sort=sort or "-start")
    shown = found[:count] if count else found
    chosen = choose_columns(shown, columns) if shown else FIXED_COLUMNS
    if fmt == "json":
        out.write(json.dumps([as_json(run) for run in shown], indent=2, default=str) + "\n")
    elif fmt == "csv":
        write_csv(shown, chosen, out, complete=not columns)
    elif fmt == "markdown":
        rows = table_rows(shown, chosen, False)
        out.write(_markdown([header(c) for c in chosen], rows) + "\n")
    elif not found:
        out.write(f"no runs in {store.label}{' match' if where else ''}\n")
    else:
        rows = table_rows(shown, chosen, terminal)
        width = shutil.get_terminal_size().columns if terminal else None
        out.write(render_table([header(c) for c in chosen], rows, width=width,
                               status_column=chosen.index("status") if "status" in chosen else None,
                               color=use_color(out)) + "\n")
        if len(shown) < len(found):
            out.write(f"({len(found) - len(shown)} older runs not shown: --limit N shows more, 0 all)\n")


def as_json(run: Any) -> dict[str, Any]:
    """One run, complete and machine-readable: the config unflattened, each metric's summary."""
    return {"id": run.id, "experiment": run.experiment, "status": run.status, "command": run.summary.get("command"),
            "start_time": run.start_time.isoformat() if run.start_time else None,
            "stop_time": run.stop_time.isoformat() if run.stop_time else None, "duration": run.duration,
            "host": run.host.get("hostname"), "commit": value_of(run, "commit") or None, "config": run.config,
            "metrics": run.metric_stats, "result": run.result, "sweep": run.meta.get("sweep"),
            "comment": run.meta.get("comment"), "uid": run.uid}


def write_csv(runs: Sequence[Any], chosen: Sequence[str], out: IO[str], complete: bool = True) -> None:
    """The columns in full; ``complete``: then every config entry and metric summary not among them."""
    everything = list(dict.fromkeys([*chosen, *(f"config.{k}" for run in runs for k in flatten(run.config)),
                                     *(f"metrics.{m}:{s}" for m in metric_names(runs)
                                       for s in ("min", "max", "count"))])) if complete else list(chosen)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(everything)
    for run in runs:
        row = []
        for column in everything:
            value = value_of(run, column)
            if value is MISSING or value is None:
                row.append("")
            elif column in ("start", "stop"):
                row.append(value.isoformat())
            elif isinstance(value, (dict, list)):
                row.append(json.dumps(value))
            else:
                row.append(value)
        writer.writerow(row)
    out.write(buffer.getvalue())


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    from labrun._util.table import format_cell

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)),
                      *(line([format_cell(v, cut=False) for v in row]) for row in rows)])
