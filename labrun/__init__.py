"""labrun: record, observe and reproduce machine-learning experiments.

The public API is what this module exports. Names are imported on first use so that ``import labrun`` stays
cheap for scripts that only parse ``--help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labrun._util.lazy_exports import lazy_getattr
from labrun.version import __version__

if TYPE_CHECKING:  # what a type checker sees; at run time each name is imported on first use
    from labrun.errors import (CommandLineError, ConfigAddedError, ConfigError, DirtyRepositoryError, LabrunError,
                               MissingConfigError, NamedConfigNotFoundError, ObserverNotAvailableError,
                               ReadOnlyConfigError, SignatureError)
    from labrun.experiment import Experiment, experiment
    from labrun.ingredient import Ingredient
    from labrun.observer import RunObserver
    from labrun.commandline_options import cli_option
    from labrun.host_info import host_info_gatherer, host_info_getter
    from labrun.readback import open_store
    from labrun.settings import SETTINGS
    from labrun.run import Run
    from labrun.errors import SacredInterrupt, TimeoutInterrupt

_EXPORTS = {
    "Experiment": "labrun.experiment",
    "experiment": "labrun.experiment",
    "Ingredient": "labrun.ingredient",
    "Run": "labrun.run",
    "TimeoutInterrupt": "labrun.errors",
    "SacredInterrupt": "labrun.errors",
    "RunObserver": "labrun.observer",
    "open_store": "labrun.readback",
    "SETTINGS": "labrun.settings",
    "cli_option": "labrun.commandline_options",
    "host_info_gatherer": "labrun.host_info",
    "host_info_getter": "labrun.host_info",
    "LabrunError": "labrun.errors",
    "ConfigError": "labrun.errors",
    "ConfigAddedError": "labrun.errors",
    "MissingConfigError": "labrun.errors",
    "NamedConfigNotFoundError": "labrun.errors",
    "ReadOnlyConfigError": "labrun.errors",
    "SignatureError": "labrun.errors",
    "CommandLineError": "labrun.errors",
    "ObserverNotAvailableError": "labrun.errors",
    "DirtyRepositoryError": "labrun.errors",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
