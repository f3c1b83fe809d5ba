"""Sacred's host-info hooks: more facts about the machine, recorded in the run's ``host``.

    @host_info_gatherer("disk_free_gb")
    def disk_free():
        return shutil.disk_usage("/").free / 1e9

    ex = Experiment("demo", additional_host_info=[disk_free])

A gatherer that raises ``IgnoreHostInfo`` adds nothing; one that fails otherwise records its error as the
value, and the run goes on.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable

__all__ = ["HostInfoGetter", "IgnoreHostInfo", "host_info_gatherer", "host_info_getter", "host_info_gatherers"]

BUILTIN_NAMES = ("hostname", "os", "python_version", "cpu", "gpus", "ENV")  # Sacred's own gatherers' keys


class IgnoreHostInfo(Exception):
    """Raised by a gatherer that has nothing to say on this machine."""


class HostInfoGetter:
    """A named function that returns one JSON-able fact about the host."""

    def __init__(self, getter_function: Callable[[], Any], name: str):
        self.getter_function = getter_function
        self.name = name

    def __call__(self) -> Any:
        return self.getter_function()

    def get_info(self) -> Any:
        return self.getter_function()


host_info_gatherers: dict[str, HostInfoGetter] = {}  # filled by the deprecated @host_info_getter


def host_info_gatherer(name: str) -> Callable[[Callable[[], Any]], HostInfoGetter]:
    """Decorator: the function's return value is recorded as ``host[name]`` (pass it to
    ``Experiment(additional_host_info=[...])``)."""
    def wrapper(function: Callable[[], Any]) -> HostInfoGetter:
        return HostInfoGetter(function, name)

    return wrapper


def host_info_getter(func: Callable[[], Any] | None = None, name: str | None = None) -> Any:
    """Sacred's older, global form: every experiment in the process records the function's value."""
    warnings.warn("host_info_getter is deprecated; use @host_info_gatherer(NAME) and "
                  "Experiment(additional_host_info=[...])", DeprecationWarning, stacklevel=2)

    def register(function: Callable[[], Any]) -> Callable[[], Any]:
        key = name or function.__name__
        host_info_gatherers[key] = HostInfoGetter(function, key)
        return function

    return register(func) if func is not None else register


def check_additional_host_info(getters: Iterable[HostInfoGetter]) -> None:
    """Refuse a gatherer that would overwrite one of the built-in host facts."""
    for getter in getters:
        if getter.name in BUILTIN_NAMES:
            raise KeyError(f"additional host info '{getter.name}' would replace a built-in host fact; use another "
                           f"name (taken: {', '.join(BUILTIN_NAMES)})")


def gather_additional(getters: Iterable[HostInfoGetter]) -> dict[str, Any]:
    """The values of the global and the experiment's gatherers."""
    from labrun.config.values import storable

    found: dict[str, Any] = {}
    for getter in [*host_info_gatherers.values(), *getters]:
        try:
            found[getter.name] = storable(getter())
        except IgnoreHostInfo:
            continue
        except Exception as exc:  # a gatherer's bug must not stop the run
            found[getter.name] = f"error: {type(exc).__name__}: {exc}"
    return found
