"""Capturing what a run prints, as the terminal showed it.

``fd`` (the default on Linux when sys.stdout is file descriptor 1) redirects file descriptors 1 and 2 through
pipes, so output of C extensions and
subprocesses is caught too; ``sys`` replaces sys.stdout and sys.stderr; ``no`` captures nothing. Everything
still reaches the terminal. Carriage returns and backspaces are applied, so a progress bar is stored as
its last state, not as thousands of redraws.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
import threading
from typing import IO, Any

_CONTROL = re.compile(r"(\r\n|\r|\n|\x08)")


class TerminalText:
    """Text with \\r and \\b applied; complete lines can be taken as they are committed.

    Each stream (stdout, stderr) keeps its own unfinished line, so a progress bar on stdout and a log line on
    stderr never merge into one line; complete lines are kept in the order they were completed.
    """

    def __init__(self) -> None:
        self._done: list[str] = []
        self._lines: dict[int, list[Any]] = {}  # stream -> [unfinished line, cursor]
        self._lock = threading.Lock()

    def feed(self, text: str, stream: int = 1) -> None:
        with self._lock:
            state = self._lines.setdefault(stream, ["", 0])
            line, cursor = state
            for part in _CONTROL.split(text):
                if not part:
                    continue
                if part in ("\n", "\r\n"):
                    self._done.append(line + "\n")
                    line, cursor = "", 0
                elif part == "\r":
                    cursor = 0
                elif part == "\x08":
                    cursor = max(0, cursor - 1)
                else:
                    end = cursor + len(part)
                    line = line[:cursor] + part + line[end:]
                    cursor = end
            state[0], state[1] = line, cursor

    def take_lines(self) -> str:
        """The lines completed since the last call."""
        with self._lock:
            done, self._done = self._done, []
        return "".join(done)

    def take_all(self) -> str:
        """Everything not yet taken, the unfinished last line included."""
        with self._lock:
            done, self._done = self._done, []
            unfinished = [state[0] for state in self._lines.values() if state[0]]
            self._lines = {}
        return "".join(done) + "\n".join(unfinished)


class _Tee:
    """A text stream that writes through to ``target`` and into the captured text."""

    def __init__(self, target: IO[str], text: TerminalText, stream: int):
        self._target = target
        self._text = text
        self._stream = stream

    def write(self, data: str) -> int:
        self._text.feed(data, self._stream)
        return self._target.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class OutputCapture:
    """Start with ``start()``; take new lines with ``take_output()``; ``stop()`` restores everything."""

    def __init__(self, mode: str | None):
        self.mode = mode or default_mode()
        self.text = TerminalText()
        self._saved_fds: list[int] = []
        self._readers: list[threading.Thread] = []
        self._saved_streams: tuple[Any, Any] | None = None

    def start(self) -> None:
        if self.mode == "sys":
            self._saved_streams = (sys.stdout, sys.stderr)
            sys.stdout = _Tee(sys.stdout, self.text, 1)  # type: ignore[assignment]
            sys.stderr = _Tee(sys.stderr, self.text, 2)  # type: ignore[assignment]
        elif self.mode == "fd":
            _flush_std()
            for fd in (1, 2):
                saved = os.dup(fd)
                read_end, write_end = os.pipe()
                os.dup2(write_end, fd)
                os.close(write_end)
                self._saved_fds.append(saved)
                reader = threading.Thread(target=self._pump, args=(read_end, saved, fd), daemon=True,
                                          name=f"labrun-capture-fd{fd}")
                reader.start()
                self._readers.append(reader)

    def _pump(self, read_end: int, terminal: int, stream: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                try:
                    os.write(terminal, chunk)
                except OSError:
                    pass
                self.text.feed(decoder.decode(chunk), stream)
            self.text.feed(decoder.decode(b"", final=True), stream)
        finally:
            os.close(read_end)

    def take_output(self) -> str:
        """Complete lines printed so far; Python's own buffers are flushed first so prints are not held back."""
        _flush_std()
        return self.text.take_lines()

    def stop(self) -> None:
        if self._saved_streams is not None:
            sys.stdout, sys.stderr = self._saved_streams
            self._saved_streams = None
        if self._saved_fds:
            _flush_std()
            for fd, saved in zip((1, 2), self._saved_fds):
                os.dup2(saved, fd)  # closes our pipe's write end: the reader sees EOF
            for reader in self._readers:
                reader.join(2.0)  # a subprocess still holding the pipe must not hang the run's end
            for saved in self._saved_fds:
                os.close(saved)
            self._saved_fds, self._readers = [], []


def default_mode() -> str:
    """``fd`` on Linux when print() really writes to file descriptor 1; ``sys`` otherwise (notebooks,
    IDEs and test runners replace sys.stdout, and fd capture would then miss every print)."""
    if not sys.platform.startswith("linux"):
        return "sys"
    try:
        return "fd" if sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2 else "sys"
    except (AttributeError, ValueError, OSError):
        return "sys"


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
