"""Plain-text tables of runs for the terminal (``labrun ls``, ``compare``, a sweep's summary), and the ways
their cells are written: numbers, times ("2h ago"), durations and coloured statuses."""

from __future__ import annotations

import datetime as _dt
import os
from typing import IO, Any, Sequence

MAX_CELL = 32  # longer cells are cut with "…" so that one long value does not push every column off screen
STATUS_COLORS = {"COMPLETED": "32", "FAILED": "31", "INTERRUPTED": "33", "TIMEOUT": "33", "DIED": "35",
                 "RUNNING": "36", "QUEUED": "34"}


def use_color(stream: IO[str]) -> bool:
    """Colours on a terminal, unless NO_COLOR; FORCE_COLOR forces them."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    from labrun._util.progress import is_terminal

    return is_terminal(stream)


def format_cell(value: Any, cut: bool = True) -> str:
    """A value as a table shows it: floats with 4 significant digits, nothing for None."""
    kind = value.__class__
    if kind is str and (not cut or len(value) <= MAX_CELL):
        return value
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        import json

        text = json.dumps(value)
    else:
        text = str(value)
    return text if not cut or len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def ago(moment: _dt.datetime | None, now: _dt.datetime | None = None) -> str:
    """``2h ago``, ``3d ago``, ``just now``."""
    if moment is None:
        return ""
    seconds = ((now or _dt.datetime.now(_dt.timezone.utc)) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now" if seconds < 10 else f"{int(seconds)}s ago"


def local_time(moment: _dt.datetime | None) -> str:
    """The moment in this machine's time zone, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def duration(seconds: float | None) -> str:
    """``0:01:05``; days as ``2d 3:04:05``."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def paint_status(status: str, color: bool) -> str:
    code = STATUS_COLORS.get(status.split()[0] if status else "")
    return f"\033[{code}m{status}\033[0m" if color and code else status


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None,
                 status_column: int | None = None, color: bool = False) -> str:
    """Headers, a rule and one line per row; numeric columns are right-aligned. With ``width``, columns
    that do not fit are left out from the right, and a last line says how many."""
    cells = [[format_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) or row[i] is None
                   for row in rows) and any(row[i] is not None for row in rows) for i in range(len(headers))]
    shown = len(headers)
    if width:
        while shown > 1 and sum(widths[:shown]) + 2 * (shown - 1) > width:
            shown -= 1

    # one format for every line: C-level padding instead of a Python call per cell (10,000-run tables)
    layout = "  ".join(f"{{:{'>' if num else '<'}{w}}}" for w, num in zip(widths[:shown], numeric))

    def line(values: Sequence[str], painted: bool = False) -> str:
        text = layout.format(*values[:shown]).rstrip()
        if painted and color and status_column is not None and status_column < shown:
            status = values[status_column]
            start = sum(widths[:status_column]) + 2 * status_column
            text = text[:start] + paint_status(status, True) + text[start + len(status):]
        return text

    out = [line(headers), line(["-" * w for w in widths]), *(line(row, True) for row in cells)]
    if shown < len(headers):
        out.append(f"({len(headers) - shown} more columns do not fit: {', '.join(headers[shown:])}; "
                   f"--columns picks them, --format csv shows all)")
    return "\n".join(out)
