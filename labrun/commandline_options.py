"""Sacred's ``cli_option``: a script's own command-line flags, applied to the run before it starts.

    @cli_option("-x", "--extra-seed", is_flag=False)
    def extra_seed(value, run):
        run.info["extra_seed"] = int(value)

    ex = Experiment("demo", additional_cli_options=[extra_seed])

``python exp.py --extra-seed 3`` (or ``-x 3``) calls ``extra_seed("3", run)``; a flag (``is_flag=True``)
passes True. The flags show in ``--help`` with the function's docstring.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

from labrun.cli.options import OptionSpec

__all__ = ["CLIOption", "cli_option"]


class CLIOption:
    """A flag of the script's own, and the function that applies its value to the run."""

    def __init__(self, apply_function: Callable[[Any, Any], Any], short_flag: str, long_flag: str, is_flag: bool):
        if not re.match(r"-\w$", short_flag):
            raise ValueError(f"short flag {short_flag!r} is malformed; one letter after '-', e.g. '-j'")
        if not re.match(r"--[\w-]+\w$", long_flag):
            raise ValueError(f"long flag {long_flag!r} is malformed; e.g. '--my-flag'")
        self.apply_function = apply_function
        self.short_flag = short_flag
        self.long_flag = long_flag
        self.is_flag = is_flag

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_function(*args, **kwargs)

    @property
    def spec(self) -> OptionSpec:
        """The flag as labrun's command line and --help describe options."""
        doc = (inspect.getdoc(self.apply_function) or "").strip().splitlines()
        return OptionSpec(self.short_flag, self.long_flag.replace("_", "-"), None if self.is_flag else "VALUE",
                          doc[0] if doc else "")

    # Sacred's names
    def get_flag(self) -> str:
        return self.long_flag

    def get_short_flag(self) -> str:
        return self.short_flag

    def get_flags(self) -> tuple[str, str]:
        return self.short_flag, self.long_flag

    def apply(self, args: Any, run: Any) -> Any:
        return self.apply_function(args, run)

    def get_name(self) -> str:
        return getattr(self.apply_function, "__name__", self.long_flag)

    def get_description(self) -> str:
        return inspect.getdoc(self.apply_function) or ""


def cli_option(short_flag: str, long_flag: str, is_flag: bool = False) -> Callable[[Callable[[Any, Any], Any]],
                                                                                   CLIOption]:
    """Decorator: ``apply(value, run)`` becomes the option ``short_flag``/``long_flag``; pass it to
    ``Experiment(additional_cli_options=[...])``."""
    def wrapper(function: Callable[[Any, Any], Any]) -> CLIOption:
        return CLIOption(function, short_flag, long_flag, is_flag)

    return wrapper
