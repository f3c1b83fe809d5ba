"""Errors a user can catch, all under :class:`LabrunError`.

Each message names the problem and, where one exists, the fix; the command line prints a LabrunError as a
single line and exits with status 2.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from labrun._util.suggest import did_you_mean


class LabrunError(Exception):
    """Base class of labrun's own errors: bad input, never a bug in user code."""


class ConfigError(LabrunError):
    """A config entry, layer or update is not valid."""


class ConfigAddedError(ConfigError):
    """An update names a key that no config scope defines and no captured function takes."""

    def __init__(self, added: Sequence[str], known: Iterable[str], set_by: dict[str, str] | None = None):
        """``set_by``: for keys that a named config (or config file) set, its name, so the message points there
        rather than at an update the user never typed."""
        self.added = list(added)
        known = list(known)
        set_by = set_by or {}
        parts = [f"'{key}'{did_you_mean(key, known)}" for key in self.added]
        many = len(parts) > 1
        if all(key in set_by for key in self.added):
            origins = ", ".join(sorted({f"'{set_by[key]}'" for key in self.added}))
            subject = f"the named config {origins} sets {', '.join(parts)}, which no config scope defines"
        else:
            subject = (f"the update{'s' if many else ''} {', '.join(parts)} name{'' if many else 's'} no config "
                       f"entry: no config scope defines {'them' if many else 'it'}")
        super().__init__(
            f"{subject} and no captured function takes {'them' if many else 'it'}; fix the name, add the entry "
            f"to a config scope, or pass -f/--force to add it anyway"
        )


class MissingConfigError(LabrunError):
    """A captured function was called without arguments that neither the call nor the config supplies."""

    def __init__(self, function: str, missing: Sequence[str], available: Iterable[str]):
        self.function = function
        self.missing = list(missing)
        available = sorted(available)
        names = ", ".join(f"'{m}'" for m in self.missing)
        hints = "".join(did_you_mean(m, available) for m in self.missing)
        super().__init__(
            f"{function}() is missing {names}: pass {'them' if len(self.missing) > 1 else 'it'} in the call or "
            f"add {'them' if len(self.missing) > 1 else 'it'} to the config{hints}. "
            f"Config keys available here: {', '.join(available) if available else '(none)'}"
        )


class NamedConfigNotFoundError(ConfigError):
    """The command line or ``run()`` asked for a named config that does not exist."""

    def __init__(self, name: str, available: Iterable[str]):
        self.name = name
        available = sorted(available)
        super().__init__(
            f"there is no named config '{name}'{did_you_mean(name, available)}; "
            f"available: {', '.join(available) if available else '(none; define one with @ex.named_config)'}"
        )


class ReadOnlyConfigError(LabrunError, TypeError):
    """Code inside a run tried to change the config through a read-only view."""


class SignatureError(LabrunError, TypeError):
    """A captured function cannot be given the arguments it was called with."""


class CommandLineError(LabrunError):
    """The command line could not be understood."""


class ObserverNotAvailableError(LabrunError):
    """An observer was asked for by URL or option, but its backend is not installed."""


class DirtyRepositoryError(LabrunError):
    """``-e/--enforce-clean`` was given and a git repository of the experiment has uncommitted changes."""


class StoreReadError(LabrunError):
    """A store, or a run in it, cannot be read back (``labrun ls/show/compare/plot/rerun``, ``open_store``)."""


class RerunError(LabrunError):
    """A recorded run cannot be re-created as asked (its code is gone, its command is unknown...)."""


class CircularDependencyError(ConfigError):
    """Ingredients that contain themselves, directly or through others."""


class InvalidConfigError(ConfigError):
    """A config value or key that cannot be stored (Sacred's name; labrun raises ConfigError's subclasses)."""


class ObserverError(Exception):
    """Sacred's name for an observer's failure; labrun's delivery never lets one end a run."""


class SacredInterrupt(Exception):
    """Raise a subclass with ``STATUS = "NAME"`` to end the run with that status (Sacred's custom interrupts)."""

    STATUS = "INTERRUPTED"


class TimeoutInterrupt(SacredInterrupt):
    """Raise this from a run to record it as TIMEOUT (a time budget ran out)."""

    STATUS = "TIMEOUT"


SacredError = LabrunError  # Sacred's base class of its errors: `except SacredError` catches labrun's
