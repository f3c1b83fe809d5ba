"""The ``labrun`` command: tools that work on recorded runs (more arrive with the stores that need them)."""

from __future__ import annotations

import sys
from typing import Sequence

from labrun.version import __version__

USAGE = """labrun - record, observe and reproduce experiments

Usage:
  labrun --version
  labrun --help

Experiments run as their own scripts: python exp.py [COMMAND] [with UPDATE...] [options]
(python exp.py --help lists them).
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in ([], ["-h"], ["--help"]):
        print(USAGE, end="")
        return 0
    if args == ["--version"]:
        print(f"labrun {__version__}")
        return 0
    print(f"error: unknown command '{' '.join(args)}'\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":
    sys.exit(main())
