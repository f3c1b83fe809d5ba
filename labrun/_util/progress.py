"""One status line on a terminal, rewritten in place; nothing at all when the stream is not a terminal
(logs and pipes get the summary lines that callers print instead)."""

from __future__ import annotations

import sys
import time
from typing import IO


class ProgressLine:
    """Rewrites one line of ``stream`` (stderr by default) at most every ``interval`` seconds."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 0.2):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.enabled = is_terminal(self.stream)
        self._shown = 0
        self._last = 0.0

    def show(self, text: str, final: bool = False) -> None:
        """Show ``text``, unless the line was rewritten less than ``interval`` ago (a ``final`` one always)."""
        if not self.enabled or (not final and time.monotonic() - self._last < self.interval):
            return
        self._last = time.monotonic()
        self.stream.write("\r" + text + " " * max(0, self._shown - len(text)))
        self.stream.flush()
        self._shown = len(text)

    def clear(self) -> None:
        """Remove the line, so that what is printed next starts on a clean line."""
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal (False for pipes, files and closed or replaced streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def rate_and_eta(done: float, total: float, elapsed: float) -> str:
    """``"85,000/s, ETA 7 s"`` for ``done`` of ``total`` units in ``elapsed`` seconds."""
    if elapsed <= 0 or done <= 0:
        return "starting"
    rate = done / elapsed
    left = max(0.0, total - done) / rate
    return f"{rate:,.0f}/s, ETA {left:.0f} s"
