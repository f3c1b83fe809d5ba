"""Line plots drawn with text, for ``labrun plot`` without ``-o`` (it works over SSH).

With colours, each character cell holds a 2x4 grid of Braille dots, so a line is drawn at twice the
width and four times the height of the text; each series has its colour. Without colours (a pipe, a log,
NO_COLOR) series could not be told apart in Braille, so each is drawn with its own marker character.
Written here rather than taken from a library: plotext, the usual choice, changed its whole API in 6.0,
and this is about a hundred lines.
"""

from __future__ import annotations

import math
from typing import Sequence

COLORS = ("34", "31", "32", "33", "35", "36", "94", "91")
MARKERS = ("*", "o", "+", "x", "#", "@", "%", "&")
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # Braille dot bits by (row, column) in a cell

Series = tuple[str, Sequence[float], Sequence[float]]  # label, xs, ys


def _scale(low: float, high: float) -> tuple[float, float]:
    if low == high:
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    return low, high


def _number(value: float) -> str:
    return f"{value:.4g}"


def render(title: str, series: Sequence[Series], width: int = 80, height: int = 16, color: bool = False,
           log_y: bool = False) -> str:
    """One panel: the title, the plot with its y range on the left and x range below, and a legend."""
    points = [(label, [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y) and
                       (y > 0 or not log_y)]) for label, xs, ys in series]
    every = [p for _label, pts in points for p in pts]
    if not every:
        return f"{title}: no points to draw"
    x_low, x_high = _scale(min(p[0] for p in every), max(p[0] for p in every))
    transform = math.log10 if log_y else (lambda v: v)
    y_low, y_high = _scale(min(transform(p[1]) for p in every), max(transform(p[1]) for p in every))
    margin = max(len(_number(10 ** y_high if log_y else y_high)), len(_number(10 ** y_low if log_y else y_low))) + 1
    cols, rows = max(10, width - margin - 1), max(4, height)
    sub_x, sub_y = (2, 4) if color else (1, 1)
    dots = [[0] * cols for _ in range(rows)]
    owner: list[list[int | None]] = [[None] * cols for _ in range(rows)]

    def plot(px: int, py: int, index: int) -> None:
        col, row = px // sub_x, rows - 1 - py // sub_y
        if 0 <= col < cols and 0 <= row < rows:
            if color:
                dots[row][col] |= _DOTS[sub_y - 1 - py % sub_y][px % sub_x]
            owner[row][col] = index

    width_px, height_px = cols * sub_x - 1, rows * sub_y - 1
    for index, (_label, pts) in enumerate(points):
        pixels = [(round((x - x_low) / (x_high - x_low) * width_px),
                   round((transform(y) - y_low) / (y_high - y_low) * height_px)) for x, y in pts]
        for (x0, y0), (x1, y1) in zip(pixels, pixels[1:] or pixels):
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for k in range(steps + 1):
                plot(round(x0 + (x1 - x0) * k / steps), round(y0 + (y1 - y0) * k / steps), index)

    def cell(row: int, col: int) -> str:
        index = owner[row][col]
        if index is None:
            return " "
        if not color:
            return MARKERS[index % len(MARKERS)]
        return f"\033[{COLORS[index % len(COLORS)]}m{chr(0x2800 + dots[row][col])}\033[0m"

    top = _number(10 ** y_high if log_y else y_high)
    bottom = _number(10 ** y_low if log_y else y_low)
    lines = [title + (" (log scale)" if log_y else "")]
    for row in range(rows):
        label = top if row == 0 else bottom if row == rows - 1 else ""
        lines.append(f"{label:>{margin}}│" + "".join(cell(row, col) for col in range(cols)))
    lines.append(" " * margin + "└" + "─" * cols)
    left, right = _number(x_low), _number(x_high)
    lines.append(" " * (margin + 1) + left + " " * max(1, cols - len(left) - len(right)) + right)
    for index, (label, _pts) in enumerate(points):
        mark = f"\033[{COLORS[index % len(COLORS)]}m━━\033[0m" if color else MARKERS[index % len(MARKERS)] * 2
        lines.append(f"  {mark} {label}")
    return "\n".join(lines)
