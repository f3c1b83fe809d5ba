"""The ``labrun`` command: tools that work on recorded runs (more arrive with the stores that need them)."""

from __future__ import annotations

import sys
from typing import Sequence

from labrun.version import __version__

USAGE = """labrun - record, observe and reproduce experiments

Usage:
  labrun ls STORE [--where=EXPR]... [--sort=KEY] [--columns=KEYS] [--limit=N] [--format=FMT]
  labrun show RUN [RUN_ID]
  labrun compare RUNS... [--where=EXPR]... [--all]
  labrun plot RUNS... [--where=EXPR]... [--metric=NAME]... [--output=FILE] [--x=AXIS] [--smooth=N] [--log]
  labrun rerun RUN [RUN_ID] [--here] [--check] [--tolerance=TOL] [--dry-run] [--keep]
  labrun sync [--url=URL]... [--journal=DIR] [--retry-for=SECS] [UID...]
  labrun --version
  labrun --help

Commands:
  ls STORE            List the runs of a store, newest first: id, experiment, status, start, duration, host,
                      git commit (* when dirty), the config entries that differ among the listed runs, each
                      metric's last value and the result. STORE is a file store folder (runs, file://runs) or
                      a MongoDB URL (mongodb://host:port/db). DIED: recorded RUNNING, but no heartbeat for
                      three beat intervals.
  show RUN            Everything about one run: times, command, config with docs and what was changed,
                      git, host, metrics, info, files, the end of its output, the failure, how to rerun it.
                      RUN is a run folder (runs/7) or STORE RUN_ID.
  compare RUNS...     Runs side by side: the config that differs (all of it with --all), each metric's last,
                      min and max, result, duration, and the provenance that differs (commit, Python, host,
                      GPUs, package versions). RUNS: runs/7 runs/9, STORE 7 9, or STORE --where ...
  plot RUNS...        Metrics of runs overlaid, one panel per metric, each run labelled by its id and the
                      config that differs: to a .png/.svg/.pdf with --output (needs labrun[plot]), else drawn
                      in the terminal.
  rerun RUN           Re-create a recorded run: the same command, config and seed, from the exact code it
                      ran (its commit plus its uncommitted changes, or its stored sources), in a temporary
                      folder. RUN is a run folder of a file store (runs/7), or STORE_URL RUN_ID
                      (runs 7, mongodb://host/db 7). It EXECUTES CODE TAKEN FROM THE STORE: rerun only
                      stores you trust. Stored sources, diffs and untracked files are checked against the
                      hashes recorded with the run, and a changed one is refused; --dry-run shows what
                      would run without running it.
  sync                Deliver what runs left in their journals to observers that were unreachable (a
                      database down): each resumes its run and receives everything that is left, with
                      progress on a terminal. UID limits it to those runs' journals. Exit 0 only when
                      everything was delivered; else say what is behind and why, and exit 1.

Options:
  --where=EXPR        Keep the runs for which KEY OP VALUE holds; OP is one of = != < <= > >= ~ (~: substring
                      or regular expression). KEY: id, experiment, status, start, stop, duration, host,
                      commit, result, command, sweep, comment, config.ENTRY (config.model.depth), info.ENTRY,
                      meta.ENTRY, metrics.NAME (last value) or metrics.NAME:min|max|first|last|count. start
                      and stop take an age (2d, 3h, 30m: start>2d is the last two days) or an ISO date.
                      Repeat to require several.
  --sort=KEY          Order by KEY, descending with a leading - (-metrics.acc) [default: -start].
  --columns=KEYS      Columns after id, comma-separated KEYs; with a leading + they are added to the usual
                      ones (+config.seed,metrics.loss:min).
  --limit=N           Show at most N runs, 0 for all (default: 50 on a terminal, all when piped).
  --format=FMT        table, csv, json (one object per run, config nested) or markdown [default: table].
  --all               compare: show every config entry, not only those that differ.
  --metric=NAME       plot: a metric to draw, repeatable (default: every metric but the system/ ones).
  -o FILE --output=FILE  plot: write a .png, .svg or .pdf instead of drawing in the terminal.
  --x=AXIS            plot: step or time (seconds since the run started) [default: step].
  --smooth=N          plot: average each point with the N-1 before it [default: 1].
  --log               plot: logarithmic y axis.
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


def subcommands() -> list[str]:
    """The subcommands, as the usage lists them."""
    return sorted({line.split()[1] for line in USAGE.split("Commands:")[0].splitlines()
                   if line.startswith("  labrun ") and not line.split()[1].startswith("-")})


def subcommand_help(name: str) -> str:
    """``labrun NAME --help``: the command's usage, its description and the options its usage names, all
    taken from the one help text, so a new subcommand gets its help by being described there."""
    import re

    head, rest = USAGE.split("Commands:", 1)
    commands, options = rest.split("\nOptions:", 1)
    usage = [line for line in head.splitlines() if line.startswith(f"  labrun {name} ") or line == f"  labrun {name}"]
    described, taking = [], False
    for line in commands.splitlines():
        if re.match(r"  \S", line):
            taking = line.split()[0] == name
        if taking:
            described.append(line)
    named = set(re.findall(r"--[\w-]+", " ".join(usage)))
    option_lines, taking = [], False
    for line in options.splitlines():
        if re.match(r"  -", line):
            flags = line.split("  ")[1]  # "  -o FILE --output=FILE  plot: ..." -> "-o FILE --output=FILE"
            taking = bool(named & set(re.findall(r"--[\w-]+", flags)))
        if taking:
            option_lines.append(line)
    text = "Usage:\n" + "\n".join(usage) + "\n\n" + "\n".join(described) + "\n"
    if option_lines:
        text += "\nOptions:\n" + "\n".join(option_lines) + "\n"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``labrun``; returns the exit status."""
    from docopt import DocoptExit, docopt

    from labrun.errors import LabrunError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, end="")
        return 0
    if args[0] in subcommands() and ("--help" in args[1:] or "-h" in args[1:]):
        print(subcommand_help(args[0]), end="")
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
        if opts["ls"]:
            from labrun.browse.ls import list_runs

            return list_runs(opts["STORE"], opts["--where"], opts["--sort"], opts["--columns"], opts["--limit"],
                             opts["--format"])
        if opts["show"]:
            from labrun.browse.show import show_run
            from labrun.readback import locate_run

            return show_run(locate_run([opts["RUN"], *([opts["RUN_ID"]] if opts["RUN_ID"] else [])]))
        if opts["compare"] or opts["plot"]:
            from labrun.browse.selection import select_runs

            runs = select_runs(opts["RUNS"], opts["--where"])
            if opts["compare"]:
                from labrun.browse.compare import compare_runs

                return compare_runs(runs, all_config=opts["--all"])
            from labrun.browse.plot import plot_runs

            return plot_runs(runs, opts["--metric"], opts["--output"], opts["--x"] or "step",
                             _whole(opts["--smooth"] or "1", "--smooth"), opts["--log"])
        if opts["sync"]:
            from labrun.recording.sync import sync

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


def _whole(text: str, option: str) -> int:
    from labrun.errors import LabrunError

    if not text.isdigit() or int(text) < 1:
        raise LabrunError(f"{option} takes a whole number of 1 or more, got '{text}'")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
