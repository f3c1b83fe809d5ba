"""Run options: Sacred's flags with Sacred's meanings, from the command line or ``run(options=...)``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, Sequence

from labrun.errors import CommandLineError, LabrunError
from labrun._util.suggest import did_you_mean


class OptionSpec(NamedTuple):
    short: str | None  # None: the option has a long form only
    long: str
    arg: str | None  # name of the option's value, None for a flag
    help: str


OPTION_SPECS = (
    OptionSpec("-b", "--beat-interval", "SECONDS",
               "Seconds between heartbeats; 0 turns them off [default: 10, or SETTINGS.DEFAULT_BEAT_INTERVAL]."),
    OptionSpec("-C", "--capture", "MODE",
               "How output is captured: fd, sys or no [default: fd where print writes to fd 1, else sys]."),
    OptionSpec("-c", "--comment", "TEXT", "A comment stored with the run."),
    OptionSpec("-d", "--debug", None, "Show full tracebacks, labrun's own frames included."),
    OptionSpec("-D", "--pdb", None, "Start the debugger at the failure when the run fails."),
    OptionSpec("-e", "--enforce-clean", None, "Refuse to run when a git repository has uncommitted changes."),
    OptionSpec("-F", "--file-storage", "DIR", "Record the run in a file store at DIR."),
    OptionSpec("-f", "--force", None, "Turn off the config checks (unknown keys, types, key names)."),
    OptionSpec(None, "--fail-fast", None, "Sweeps: start no more runs once one failed."),
    OptionSpec("-h", "--help", None, "Show this help and exit."),
    OptionSpec("-i", "--id", "ID", "Use ID as the run's id in the stores."),
    OptionSpec("-j", "--jobs", "N", "Sweeps: how many runs go on at a time [default: 1]."),
    OptionSpec(None, "--launcher", "NAME", "Sweeps: where runs start, NAME[:KEY=VALUE,...] [default: local]."),
    OptionSpec("-l", "--loglevel", "LEVEL", "Log level: DEBUG, INFO, WARNING, ERROR or a number."),
    OptionSpec("-m", "--mongo-db", "DB", "Record the run in MongoDB: a mongodb:// URL or [host:port:]db[.prefix]."),
    OptionSpec("-M", "--multirun", None,
               "Run a sweep: lr=0.1,0.01 sweeps lr, small,large named configs (docs/sweeps.md)."),
    OptionSpec(None, "--mlflow", "URI", "Record the run in MLflow: file:///abs/mlruns, sqlite:///abs/mlflow.db or http://host:port."),
    OptionSpec("-n", "--name", "NAME", "Record the run under this experiment name."),
    OptionSpec("-o", "--observer", "URL", "Record the run with the observer for URL (repeatable), e.g. file://runs."),
    OptionSpec("-p", "--print-config", None, "Print the config before running."),
    OptionSpec("-P", "--priority", "NUMBER", "A priority stored with the run (for queues)."),
    OptionSpec("-q", "--queue", None, "Record the run as QUEUED without running it."),
    OptionSpec(None, "--no-system-metrics", None,
               "Record no system/* metrics (CPU, memory, GPU); also LABRUN_SYSTEM_METRICS=0."),
    OptionSpec(None, "--rerun-all", None, "Sweeps: run every run again, also those already completed."),
    OptionSpec(None, "--tensorboard", "LOGDIR", "Record the run as a TensorBoard run in LOGDIR."),
    OptionSpec("-u", "--unobserved", None, "Run without any observer."),
    OptionSpec(None, "--wait", None,
               "Sweeps: with a launcher that queues the runs (slurm), wait for them and show the table."),
)
SPEC_BY_LONG = {spec.long: spec for spec in OPTION_SPECS}
# Sacred's keys in meta.options where they differ from the flag (it spells these with '_')
SACRED_OPTION_KEYS = {"--enforce-clean": "--enforce_clean", "--file-storage": "--file_storage",
                      "--mongo-db": "--mongo_db"}
SPEC_BY_SHORT = {spec.short: spec for spec in OPTION_SPECS if spec.short}
SWEEP_ONLY = ("--multirun", "--jobs", "--launcher", "--rerun-all", "--fail-fast", "--wait")  # not passed on to the runs


@dataclass
class Options:
    """The run options, named after their long flags."""

    beat_interval: float | None = None  # None: SETTINGS.DEFAULT_BEAT_INTERVAL
    capture: str | None = None
    comment: str | None = None
    debug: bool = False
    pdb: bool = False
    enforce_clean: bool = False
    file_storage: str | None = None
    force: bool = False
    fail_fast: bool = False
    help: bool = False
    id: str | None = None
    jobs: int = 1
    launcher: str | None = None
    loglevel: str | None = None
    mongo_db: str | None = None
    mlflow: str | None = None
    multirun: bool = False
    name: str | None = None
    no_system_metrics: bool = False
    observer: list[str] = field(default_factory=list)
    print_config: bool = False
    priority: float | None = None
    queue: bool = False
    rerun_all: bool = False
    tensorboard: str | None = None
    unobserved: bool = False
    wait: bool = False

    @classmethod
    def from_mapping(cls, options: dict[str, Any] | None) -> "Options":
        """Accept Sacred's ``{'--force': True}``, ``{'-f': True}`` and ``{'force': True}``, '-' or '_' alike."""
        out = cls()
        if not options:
            return out
        names = {f.name for f in fields(cls)}
        for key, value in options.items():
            spec = SPEC_BY_SHORT.get(str(key))
            name = (spec.long if spec else str(key)).lstrip("-").replace("-", "_")
            if name not in names:
                raise CommandLineError(
                    f"unknown option '{key}'{did_you_mean(name, sorted(names))}; known options: "
                    f"{', '.join(sorted(names))}")
            if value is None:
                continue
            setattr(out, name, _convert(name, value))
        return out

    def as_record(self, command: str | None = None, update_tokens: Sequence[str] | None = None,
                  redact: bool = True) -> dict[str, Any]:
        """The options as Sacred stores them in ``meta.options``: its key for each flag (``--file_storage``,
        ``--beat-interval``: Sacred's own mixed spelling), ``COMMAND`` and ``UPDATE`` as typed, ``with``,
        ``help``, and Sacred's observers labrun lacks as null; labrun's own flags by their long names.
        Observer URLs without their credentials."""
        from labrun._util.redact import redact_url
        from labrun.recording.registry import BACKENDS

        record: dict[str, Any] = {}
        for spec in OPTION_SPECS:
            value = getattr(self, spec.long[2:].replace("-", "_"))
            record[SACRED_OPTION_KEYS.get(spec.long, spec.long)] = value
        if redact:
            for backend in BACKENDS:
                key = SACRED_OPTION_KEYS.get(backend.flag, backend.flag)
                if record[key]:
                    record[key] = redact_url(record[key])
            record["--observer"] = [redact_url(url) for url in record["--observer"] or []]
        record.update({"--s3": None, "--sql": None, "--tiny_db": None})
        if update_tokens is not None:  # from a command line: what it named, as Sacred's parser gives it
            record.update({"COMMAND": command, "UPDATE": list(update_tokens), "help": False,
                           "with": bool(update_tokens)})
        return dict(sorted(record.items()))

    def to_argv(self) -> list[str]:
        """The options as the command line spells them (those differing from the defaults), for the runs a
        sweep starts; the sweep's own options are left out."""
        default = Options()
        argv: list[str] = []
        for spec in OPTION_SPECS:
            name = spec.long[2:].replace("-", "_")
            value = getattr(self, name)
            if spec.long in SWEEP_ONLY or value == getattr(default, name):
                continue
            if spec.arg is None:
                argv.append(spec.long)
            else:
                argv += [f"{spec.long}={v}" for v in (value if isinstance(value, list) else [value])]
        return argv

    def check_sweep(self) -> None:
        """The sweep options make sense only with -M; --id names one run, and a sweep has many."""
        if not self.multirun:
            given = [flag for flag in SWEEP_ONLY[1:] if getattr(self, flag[2:].replace("-", "_")) !=
                     getattr(Options(), flag[2:].replace("-", "_"))]
            if given:
                raise CommandLineError(f"{given[0]} applies to sweeps only: add -M (e.g. -M with lr=0.1,0.01)")
        elif self.id is not None:
            raise CommandLineError("-i/--id names one run, and a sweep starts many: leave it out with -M")
        elif self.pdb:
            raise CommandLineError("-D/--pdb needs the run's terminal, and a sweep's runs have none: rerun the "
                                   "failed config without -M to debug it")


def _convert(name: str, value: Any) -> Any:
    try:
        if name == "beat_interval":
            seconds = float(value)
            if seconds < 0:
                raise ValueError
            return seconds
        if name == "priority":
            return float(value)
        if name == "jobs":
            jobs = int(value)
            if jobs < 1 or jobs != float(value):
                raise ValueError
            return jobs
    except (TypeError, ValueError):
        flag = "--" + name.replace("_", "-")
        what = "a whole number of runs at a time (1 or more)" if name == "jobs" else "a non-negative number"
        raise CommandLineError(f"{flag} takes {what}, got {value!r}") from None
    if name == "capture" and value not in ("fd", "sys", "no"):
        raise CommandLineError(f"--capture takes fd, sys or no, got {value!r}")
    if name == "observer" and isinstance(value, str):
        return [value]
    if name == "loglevel":
        return str(value)
    if name == "id":
        from labrun.stores.artifact_names import check_run_id

        try:
            return check_run_id(value)
        except LabrunError as exc:
            raise CommandLineError(str(exc)) from None
    return value
