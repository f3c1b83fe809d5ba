"""The ``labrun`` command: tools that work on recorded runs (more arrive with the stores that need them)."""

from __future__ import annotations

import sys
from typing import Sequence

from labrun.version import __version__

USAGE = """labrun - record, observe and reproduce experiments

Usage:
  labrun rerun RUN [RUN_ID] [--here] [--check] [--tolerance=TOL] [--dry-run] [--keep]
  labrun sync [--url=URL]... [--journal=DIR] [--retry-for=SECS] [UID...]
  labrun --version
  labrun --help

Commands:
  rerun RUN           Re-create a recorded run: the same command, config and seed, from the exact code it
                      ran (its commit plus its uncommitted changes, or its stored sources), in a temporary
                      folder. RUN is a run folder of a file store (runs/7), or STORE_URL RUN_ID
                      (runs 7, mongodb://host/db 7).
  sync                Deliver what runs left in their journals to observers that were unreachable (a
                      database down): each resumes its run and receives everything that is left, with
                      progress on a terminal. UID limits it to those runs' journals. Exit 0 only when
                      everything was delivered; else say what is behind and why, and exit 1.

Options:
  --here              Run the current working tree instead of the recorded code.
  --check             Compare the new run's status, result and final metric values with the original's;
                      exit 1 if they differ.
  --tolerance=TOL     Relative (and, near zero, absolute) tolerance for floats in --check [default: 1e-9].
  --dry-run           Print the environment drift and the command without running it.
  --keep              Keep the temporary folder with the code and config.
  --url=URL           An observer URL with its password, for journals that keep it redacted.
  --journal=DIR       The journal folder (else $LABRUN_JOURNAL_DIR, else ~/.local/state/labrun/journal).
  --retry-for=SECS    Retry observers that fail, with backoff, for up to this long [default: 0].
  -h --help           Show this text.
  --version           Show the version.

Experiments run as their own scripts: python exp.py [COMMAND] [with UPDATE...] [options]
(python exp.py --help lists them).
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``labrun``; returns the exit status."""
    from docopt import DocoptExit, docopt

    from labrun.errors import LabrunError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, end="")
        return 0
    try:
        opts = docopt(USAGE, argv=args, default_help=False)
    except DocoptExit:
        print(f"error: cannot understand 'labrun {' '.join(args)}'\n{USAGE}", file=sys.stderr, end="")
        return 2
    if opts["--help"]:
        print(USAGE, end="")
        return 0
    if opts["--version"]:
        print(f"labrun {__version__}")
        return 0
    try:
        if opts["sync"]:
            from labrun.sync import sync

            try:
                retry_for = float(opts["--retry-for"])
            except ValueError:
                raise LabrunError(f"--retry-for takes seconds (like 600), got '{opts['--retry-for']}'") from None
            return sync(opts["--journal"], opts["--url"], uids=opts["UID"], retry_for=retry_for)
        from labrun.rerun.command import rerun

        try:
            tolerance = float(opts["--tolerance"])
        except ValueError:
            raise LabrunError(f"--tolerance takes a number (like 1e-6), got '{opts['--tolerance']}'") from None
        return rerun([opts["RUN"], *([opts["RUN_ID"]] if opts["RUN_ID"] else [])], here=opts["--here"],
                     check=opts["--check"], tolerance=tolerance, dry_run=opts["--dry-run"], keep=opts["--keep"])
    except LabrunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
