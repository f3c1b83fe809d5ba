"""Plain-text tables of runs for the terminal: one row per run, columns aligned, numbers right-aligned."""

from __future__ import annotations

from typing import Any, Sequence

MAX_CELL = 32  # longer cells are cut with "…" so that one long value does not push every column off screen


def format_cell(value: Any) -> str:
    """A value as a table shows it: floats with 4 significant digits, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Headers, a rule and one line per row; numeric columns are right-aligned."""
    cells = [[format_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) or row[i] is None
                   for row in rows) and any(row[i] is not None for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in cells)])
