"""The names Sacred scripts import from ``sacred.utils``: custom interrupts, error classes, the output filter."""

from __future__ import annotations

from labrun.errors import (CircularDependencyError, ConfigAddedError, ConfigError, InvalidConfigError,
                           MissingConfigError, NamedConfigNotFoundError, ObserverError, SacredError,
                           SacredInterrupt, SignatureError, TimeoutInterrupt)

__all__ = ["apply_backspaces_and_linefeeds", "SacredInterrupt", "TimeoutInterrupt", "SacredError",
           "CircularDependencyError", "ConfigError", "ConfigAddedError", "InvalidConfigError",
           "MissingConfigError", "NamedConfigNotFoundError", "ObserverError", "SignatureError"]


def apply_backspaces_and_linefeeds(text: str) -> str:
    """``text`` as a terminal shows it: each carriage return goes back to the start of its line, each
    backspace one character back. (labrun already stores output this way; Sacred scripts set this as
    ``ex.captured_out_filter``, which keeps working.)"""
    from labrun.recording.output import TerminalText

    terminal = TerminalText()
    terminal.feed(text)
    return terminal.take_all()
