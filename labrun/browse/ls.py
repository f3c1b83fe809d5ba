"""``labrun ls STORE``: one row per run, the columns that tell them apart found automatically."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from typing import IO, Any, Sequence

from labrun.errors import LabrunError
from labrun.provenance.system_metrics import PREFIX as SYSTEM_PREFIX
from labrun.readback.query import MISSING, check_keys, flatten, value_of
from labrun.table import ago, duration, local_time, render_table, use_color

FORMATS = ("table", "csv", "json", "markdown")
FIXED_COLUMNS = ["id", "experiment", "status", "start", "duration", "host", "commit"]
TERMINAL_LIMIT = 50
NEVER_DIFFERING = ("seed",)  # different in nearly every run: shown only when asked for (--columns config.seed)


def differing_config(runs: Sequence[Any]) -> list[str]:
    """The config entries whose values are not the same in every run (missing counts as a value)."""
    flat = [flatten(run.config) for run in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [f"config.{k}" for k in keys if k not in NEVER_DIFFERING and
            len({json.dumps(f.get(k, "<missing>"), sort_keys=True, default=str) for f in flat}) > 1]


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


def cell(run: Any, column: str, terminal: bool) -> Any:
    value = value_of(run, column)
    if value is MISSING:
        return None
    if column in ("start", "stop"):
        return ago(value) if terminal else local_time(value)
    if column == "duration":
        return duration(value)
    return value


def list_runs(store_url: str, where: Sequence[str], sort: str | None, columns: str | None, limit: str | None,
              fmt: str | None, out: IO[str] = sys.stdout) -> int:
    """Print the runs of ``store_url``; the exit status."""
    from labrun.readback import open_store

    fmt = fmt or "table"
    if fmt not in FORMATS:
        from labrun.suggest import did_you_mean

        raise LabrunError(f"--format takes {', '.join(FORMATS)}, got '{fmt}'{did_you_mean(fmt, FORMATS)}")
    terminal = _is_terminal(out)
    try:
        count = int(limit) if limit is not None else (TERMINAL_LIMIT if terminal and fmt == "table" else 0)
    except ValueError:
        raise LabrunError(f"--limit takes a number of runs, got '{limit}'") from None
    store = open_store(store_url)
    try:
        found = store.runs(where=list(where), sort=sort or "-start")
        shown = found[:count] if count else found
        chosen = choose_columns(shown, columns) if shown else FIXED_COLUMNS
        if fmt == "json":
            out.write(json.dumps([as_json(run) for run in shown], indent=2, default=str) + "\n")
        elif fmt == "csv":
            write_csv(shown, chosen, out)
        elif fmt == "markdown":
            rows = [[cell(run, c, False) for c in chosen] for run in shown]
            out.write(_markdown([header(c) for c in chosen], rows) + "\n")
        else:
            rows = [[cell(run, c, terminal) for c in chosen] for run in shown]
            width = shutil.get_terminal_size().columns if terminal else None
            out.write(render_table([header(c) for c in chosen], rows, width=width,
                                   status_column=chosen.index("status") if "status" in chosen else None,
                                   color=use_color(out)) + "\n")
            if len(shown) < len(found):
                out.write(f"({len(found) - len(shown)} older runs not shown: --limit N shows more, 0 all)\n")
            elif not found:
                out.write(f"no runs in {store.label}{' match' if where else ''}\n")
    finally:
        store.close()
    return 0


def as_json(run: Any) -> dict[str, Any]:
    """One run, complete and machine-readable: the config unflattened, each metric's summary."""
    return {"id": run.id, "experiment": run.experiment, "status": run.status, "command": run.record.get("command"),
            "start_time": run.start_time.isoformat() if run.start_time else None,
            "stop_time": run.stop_time.isoformat() if run.stop_time else None, "duration": run.duration,
            "host": run.host.get("hostname"), "commit": value_of(run, "commit") or None, "config": run.config,
            "metrics": run.metric_stats, "result": run.result, "sweep": run.meta.get("sweep"),
            "comment": run.meta.get("comment"), "uid": run.uid}


def write_csv(runs: Sequence[Any], chosen: Sequence[str], out: IO[str]) -> None:
    """Every column in full: the chosen ones, then every config entry and metric summary not among them."""
    everything = list(dict.fromkeys([*chosen, *(f"config.{k}" for run in runs for k in flatten(run.config)),
                                     *(f"metrics.{m}:{s}" for m in metric_names(runs)
                                       for s in ("min", "max", "count"))]))
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
    from labrun.table import format_cell

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)),
                      *(line([format_cell(v, cut=False) for v in row]) for row in rows)])


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
