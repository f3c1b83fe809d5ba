"""Running a planned sweep: the runs go to a launcher (or, for ``ex.sweep`` with one job, run in this
process), with a progress line, a clean stop on Ctrl-C, and a table of the runs at the end.

The sweep talks to its runs only through their command line (``python exp.py with ...`` plus the
environment variables ``LABRUN_SWEEP`` and ``LABRUN_RUN_UID``) and through the store they record into.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, Mapping, Sequence

from labrun._util.env_vars import RUN_UID_ENV, SWEEP_ENV
from labrun.errors import CommandLineError, LabrunError
from labrun._util.progress import ProgressLine
from labrun._util.table import duration
from labrun.sweeps.grid import describe
from labrun.sweeps.launchers import Launcher, SweepSetup, Task
from labrun.sweeps.plan import COMPLETED, PlannedRun, SweepPlan

FAILED, INTERRUPTED, NOT_RUN, DIED = "FAILED", "INTERRUPTED", "NOT RUN", "DIED"
LOST = "WORKER LOST"  # the engine lost the run's process: the store tells how it ended (or DIED)
INTERRUPTED_EXITS = (130, 143, 138, 140)  # SIGINT, SIGTERM, SIGUSR1, SIGUSR2: the run recorded itself INTERRUPTED
LOG_TAIL_LINES = 12  # of a failed run's output, shown when it fails


@dataclass
class SweepRun:
    """One run of a sweep as ``ex.sweep()`` returns it: ``skipped`` when it had completed before and was not
    run again; ``status`` NOT RUN when the sweep stopped before it (``--fail-fast``, Ctrl-C)."""

    index: int
    values: dict[str, Any]
    status: str
    id: Any = None
    result: Any = None
    skipped: bool = False
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class SweepOutcome:
    plan: SweepPlan
    runs: list[SweepRun]
    interrupted: bool = False
    submitted: str | None = None  # the runs were queued and the sweep did not wait: where they went

    @property
    def failed(self) -> list[SweepRun]:
        return [r for r in self.runs if r.status not in (COMPLETED, NOT_RUN) and not r.skipped]


def sweep_folder(sweep_id: str) -> str:
    """Where a sweep keeps each run's terminal output: beside the journal folder (``.../labrun/sweeps/ID``)."""
    from labrun.recording.journal import journal_root

    return os.path.join(os.path.dirname(os.path.abspath(journal_root())), "sweeps", sweep_id)


def run_launched(plan: SweepPlan, todo: Sequence[PlannedRun], launcher: Launcher, prefix: Sequence[str],
                 *, fail_fast: bool, out: IO[str], code_dir: str) -> SweepOutcome:
    """Start each run of ``todo`` as ``prefix + ["with", *tokens]`` through ``launcher``; wait for all
    (unless the launcher queued them and was not asked to wait)."""
    if launcher.remote and prefix[1] == "-m" and prefix[2] != "labrun.sweeps.child":
        raise CommandLineError(f"--launcher {launcher.name} runs the experiment's file from a copy of its folder, "
                               f"and `python -m {prefix[2]}` would import the module from wherever the run starts: "
                               f"start the sweep as `python path/to/{prefix[2].rpartition('.')[2]}.py ...` instead")
    folder = sweep_folder(plan.id)
    os.makedirs(folder, exist_ok=True)
    if todo:
        with _engine_errors(launcher):
            launcher.prepare(SweepSetup(plan.id, code_dir, plan.store_urls, folder))
    uids = {run.index: os.urandom(16).hex() for run in todo}
    tasks = [Task(index=run.index, argv=[*prefix, "with", *run.tokens], cwd=os.getcwd(),
                  log=os.path.join(folder, f"{run.index + 1}.log"),
                  env={SWEEP_ENV: json.dumps(plan.meta(run)), RUN_UID_ENV: uids[run.index]}) for run in todo]
    by_index = {run.index: run for run in todo}
    progress = SweepProgress(plan, len(todo), out)
    stop = threading.Event()
    ended: dict[int, str] = {}

    def on_event(kind: str, index: int, code: int | None) -> None:
        if kind == "started":
            progress.started(index)
        elif kind == "ended":
            status = (LOST if code is None else COMPLETED if code == 0 else
                      INTERRUPTED if code in INTERRUPTED_EXITS else FAILED)
            ended[index] = status
            progress.ended(by_index[index], status, code, os.path.join(folder, f"{index + 1}.log"))
            if status == FAILED and fail_fast and not stop.is_set():
                stop.set()
                progress.note("--fail-fast: starting no more runs; waiting for the running ones to end")
        progress.refresh()

    with _interrupts_stop(stop, launcher, progress) as interrupted, _engine_errors(launcher):
        submitted = launcher.run(tasks, on_event, stop)
    if submitted:
        return SweepOutcome(plan, [], submitted=submitted)
    progress.finish()
    return SweepOutcome(plan, _collect(plan, todo, ended, uids), interrupted.is_set())


@contextlib.contextmanager
def _engine_errors(launcher: Launcher) -> Iterator[None]:
    """An engine's own failure (Ray, submitit, sbatch) said as the launcher's, not as a config error; -d
    shows its traceback. Runs already started have recorded themselves."""
    try:
        yield
    except LabrunError:
        raise
    except Exception as exc:
        raise LabrunError(f"the '{launcher.name}' launcher failed: {type(exc).__name__}: {exc}. Runs it started "
                          f"recorded themselves; run the same command again to resume") from exc


@contextlib.contextmanager
def _interrupts_stop(stop: threading.Event, launcher: Launcher, progress: "SweepProgress") -> Iterator[threading.Event]:
    """While the sweep runs, Ctrl-C (or SIGTERM) starts no more runs and passes the interrupt on to the
    running ones, which record themselves INTERRUPTED; a second Ctrl-C passes it on again (they hurry)."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_signal(signum: int, frame: Any) -> None:
        if not interrupted.is_set():
            progress.note("interrupted: starting no more runs; the running ones record themselves INTERRUPTED "
                          "(Ctrl-C again to hurry them)")
        interrupted.set()
        stop.set()
        launcher.interrupt()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_in_process(experiment: Any, plan: SweepPlan, todo: Sequence[PlannedRun], command: str | None,
                   options: dict[str, Any] | None, *, fail_fast: bool, out: IO[str]) -> SweepOutcome:
    """``ex.sweep(..., jobs=1)``: each run is ``ex.run`` in this process (notebooks need no file for it)."""
    from labrun.config.updates import parse_update_tokens
    from labrun.cli.options import Options

    progress = SweepProgress(plan, len(todo), out)
    done: dict[int, SweepRun] = {}
    interrupted = False
    for planned in todo:
        parsed = parse_update_tokens(planned.tokens)
        run = experiment._create_run(command, parsed.fixed, parsed.named_configs, None,
                                     {"sweep": plan.meta(planned)}, Options.from_mapping(options))
        progress.started(planned.index)
        try:
            experiment._execute(run)
        except KeyboardInterrupt:
            interrupted = True
        except Exception as exc:  # a failed run is recorded FAILED; the sweep goes on
            if isinstance(exc, LabrunError) and run.status is None:
                raise
        status = run.status or FAILED
        done[planned.index] = SweepRun(planned.index, planned.values, status, run._id, run.result)
        progress.ended(planned, status, None, None)
        if interrupted or (status == FAILED and fail_fast):
            break
    progress.finish()
    runs = []
    for planned in plan.runs:
        if planned.index in done:
            runs.append(done[planned.index])
        elif planned in todo:
            runs.append(SweepRun(planned.index, planned.values, NOT_RUN))
        else:
            runs.append(_previous(planned))
    outcome = SweepOutcome(plan, runs, interrupted)
    if plan.store_url:
        from labrun.readback import open_store

        try:
            reader = open_store(plan.store_url)
        except LabrunError as exc:
            print(f"warning: cannot read the runs back from {plan.store_label}: {exc}", file=sys.stderr)
        else:
            _add_metrics(reader, outcome.runs)
            reader.close()
    return outcome


def _previous(planned: PlannedRun) -> SweepRun:
    record = planned.previous or {}
    return SweepRun(planned.index, planned.values, record.get("status_now", NOT_RUN), record.get("id"),
                    record.get("result"), skipped=True)


def _collect(plan: SweepPlan, todo: Sequence[PlannedRun], ended: dict[int, str],
             uids: dict[int, str]) -> list[SweepRun]:
    """Each run's status, id and result: from the store when it can be read, else from exit statuses."""
    records: dict[Any, dict[str, Any]] = {}
    reader = None
    if plan.store_url:
        from labrun.readback import open_store

        try:
            reader = open_store(plan.store_url)
            records = {r.get("uid"): r for r in reader.records(experiment=plan.experiment, command=plan.command)}
        except LabrunError as exc:
            print(f"warning: cannot read the runs back from {plan.store_label}: {exc}", file=sys.stderr)
    todo_indexes = {run.index for run in todo}
    runs = []
    for planned in plan.runs:
        if planned.index not in todo_indexes:
            runs.append(_previous(planned))
            continue
        status = ended.get(planned.index, NOT_RUN)
        record = records.get(uids[planned.index])
        recorded = record.get("status") if record is not None else None
        if recorded and recorded != "RUNNING" and status != NOT_RUN:
            status = recorded
        # Still RUNNING although the process ended: the store is behind (its delivery goes on in the
        # background) and the exit status says how it ended, or the engine lost it before it could record.
        if status == LOST:
            status = DIED
        runs.append(SweepRun(planned.index, planned.values, status, record and record.get("id"),
                             record and record.get("result")))
    if reader is not None:
        _add_metrics(reader, runs)
        reader.close()
    return runs


def _add_metrics(reader: Any, runs: list[SweepRun]) -> None:
    """Each run's last metric values (system metrics left out), for the table."""
    from labrun.provenance.system_metrics import PREFIX as SYSTEM_PREFIX

    try:
        for run in runs:
            if run.id is not None:
                run.metrics = {k: v for k, v in reader.final_metrics(run.id).items() if not k.startswith(SYSTEM_PREFIX)}
    except LabrunError as exc:  # the table shows no metrics then
        print(f"warning: cannot read the runs' metrics back: {exc}", file=sys.stderr)


def summary_table(outcome: SweepOutcome) -> str:
    """The sweep's runs: index, id, status, the swept values, each metric's last value and the result."""
    from labrun._util.table import render_table

    keys = list(dict.fromkeys(k for run in outcome.runs for k in run.values))
    metrics = sorted({m for run in outcome.runs for m in run.metrics})
    show_result = any(isinstance(r.result, (int, float)) and not isinstance(r.result, bool) for r in outcome.runs)
    headers = ["#", "id", "status", *keys, *metrics, *(["result"] if show_result else [])]
    rows = []
    for run in outcome.runs:
        status = f"{run.status} (before)" if run.skipped else run.status
        row = [run.index + 1, run.id, status, *(run.values.get(k) for k in keys),
               *(run.metrics.get(m) for m in metrics)]
        if show_result:
            row.append(run.result if isinstance(run.result, (int, float)) else None)
        rows.append(row)
    return render_table(headers, rows)


class SweepProgress:
    """Done, failed and running counts with elapsed time and ETA: one line rewritten on a terminal, a plain
    line per ended run elsewhere; a failed run's last output lines are shown when it fails."""

    def __init__(self, plan: SweepPlan, total: int, out: IO[str]):
        self.plan = plan
        self.total = total
        self.out = out
        self.line = ProgressLine(sys.stderr)
        self.running: set[int] = set()
        self.done = self.failed = 0
        self.began = time.monotonic()

    def started(self, index: int) -> None:
        self.running.add(index)
        self.refresh()

    def ended(self, run: PlannedRun, status: str, code: int | None, log: str | None) -> None:
        self.running.discard(run.index)
        self.done += 1
        self.failed += status != COMPLETED
        if status == FAILED or not self.line.enabled:
            self.line.clear()
            exit_text = f" (exit status {code})" if code not in (None, 0, 1) else ""
            where = f" [{describe(run.values)}]" if run.values else ""
            print(f"[{self.done}/{self.total}] run {run.index + 1}{where}: {status}{exit_text}", file=self.out,
                  flush=True)
            if status == FAILED and log:
                print(_tail(log), file=self.out, flush=True)
        self.refresh()

    def note(self, text: str) -> None:
        self.line.clear()
        print(text, file=sys.stderr, flush=True)

    def refresh(self) -> None:
        self.line.show(self.text())

    def text(self) -> str:
        elapsed = time.monotonic() - self.began
        left = self.total - self.done
        eta = ""
        if self.done and left:
            eta = f", ETA {duration(elapsed / self.done * left)}"
        return (f"sweep {self.plan.id}: {self.done - self.failed} done, {self.failed} failed, "
                f"{len(self.running)} running, {left - len(self.running)} waiting; {duration(elapsed)}{eta}")

    def finish(self) -> None:
        self.line.show(self.text(), final=True)
        if self.line.enabled:
            self.line.stream.write("\n")


def _tail(log: str) -> str:
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return f"    (no output: {log} cannot be read)"
    return "\n".join("    " + line for line in lines) + f"\n    (all its output: {log})"


def sweep_command_text(argv: Sequence[str]) -> str:
    """The command line that started the sweep, as the user could type it again, credentials redacted."""
    from labrun._util.redact import redact_url

    return " ".join(shlex.quote(redact_url(a)) for a in ["python", *argv])


def report(outcome: SweepOutcome, out: IO[str]) -> int:
    """Print the table and the outcome line; the exit status (1 when a run failed, 130 when interrupted).
    For runs queued without waiting, where they went instead."""
    if outcome.submitted:
        plan = outcome.plan
        where = f"`labrun ls {plan.store_label} --where sweep={plan.id}`" if plan.store_label else "their stores"
        print(f"sweep {plan.id}: {outcome.submitted}. Their records: {where}; their output: "
              f"{sweep_folder(plan.id)}. Once they ended, the same command again runs any that failed or were "
              f"interrupted; --wait stays and shows the table", file=out, flush=True)
        return 0
    print(summary_table(outcome), file=out)
    not_run = sum(r.status == NOT_RUN for r in outcome.runs)
    failed = outcome.failed
    words = [f"sweep {outcome.plan.id}: {sum(r.status == COMPLETED for r in outcome.runs)} of "
             f"{len(outcome.runs)} completed"]
    if failed:
        words.append(f"{len(failed)} failed or interrupted")
    if not_run:
        words.append(f"{not_run} not run")
    line = ", ".join(words)
    if failed or not_run:
        line += "; run the same command again to run only those"
    if outcome.plan.store_label:
        line += f". Runs are in {outcome.plan.store_label}"
    print(line, file=out, flush=True)
    if outcome.interrupted:
        return 130
    return 1 if failed else 0


def starter_argv(experiment: Any, command: str | None, option_argv: list[str], via_import: bool,
                 argv0: str | None = None) -> list[str]:
    """The command line that starts one run, without its ``with`` part.

    From the command line it is the script itself (``python exp.py``, or ``python -m pkg.exp``). From
    Python (``ex.sweep``) it imports the experiment's file as a module and runs its command line, so that a
    script that starts the sweep at its top level does not start it again in each run.
    """
    if via_import:
        target = _importable_name(experiment)
        head = [sys.executable, "-m", "labrun.sweeps.child", experiment.mainfile, target]
    elif getattr(sys, "orig_argv", None) and len(sys.orig_argv) > 2 and sys.orig_argv[1] == "-m":
        head = [sys.executable, "-m", sys.orig_argv[2]]
    else:
        script = experiment.mainfile or argv0
        if not script or not os.path.isfile(script):
            raise CommandLineError("a sweep starts each run as 'python SCRIPT with ...'; this experiment has no "
                                   "script file")
        head = [sys.executable, script]
    return [*head, *([command] if command else []), *option_argv]


def _importable_name(experiment: Any) -> str:
    mainfile = experiment.mainfile
    if mainfile:
        for module in list(sys.modules.values()):
            if os.path.abspath(getattr(module, "__file__", None) or "") == mainfile:
                for name, value in vars(module).items():
                    if value is experiment:
                        return name
    raise LabrunError(
        "ex.sweep(jobs>1) starts each run in its own process, which imports the experiment from its file: "
        "define it at the top level of a .py file (it is not found in "
        f"{mainfile or 'a file: it was made in a notebook or an interactive session'}); or use jobs=1")


def code_folder(experiment: Any) -> str:
    """The folder a launcher that starts runs elsewhere copies: the experiment's file's folder."""
    return os.path.dirname(experiment.mainfile) if experiment.mainfile else os.path.abspath(experiment.base_dir)


def store_urls(experiment: Any, options: Any) -> list[str]:
    """The URLs of the observers every run of the sweep records to (the experiment's, then the options')."""
    from labrun.recording.registry import observer_urls

    if options.unobserved:
        return []
    own = [getattr(observer, "url", None) or f"<{type(observer).__name__}>" for observer in experiment.observers]
    urls = own + observer_urls(options)
    if not urls:  # the project's defaults, as each run would use them
        from labrun.recording.defaults import default_observer_urls

        urls = default_observer_urls(experiment.base_dir)
    return urls


def _prepare(experiment: Any, command_name: str | None, grid: Any, options: Any, command_line: str) -> SweepPlan:
    from labrun.sweeps.plan import plan_sweep

    if os.environ.get(SWEEP_ENV):
        raise CommandLineError("a run of a sweep cannot start a sweep of its own")
    command = experiment._find_command(command_name)
    if command.builtin:
        raise CommandLineError(f"a sweep runs the experiment's main function or one of its commands, not "
                               f"'{command.name}'")
    urls = store_urls(experiment, options)
    if not urls and not options.unobserved:
        raise CommandLineError(
            "a sweep needs an observer: it resumes from what the store holds (runs already COMPLETED are "
            "not run again), and without one nothing would be recorded to resume from. Add -F DIR or -m URL, "
            "or pass -u to run the sweep unobserved")
    return plan_sweep(experiment, command.name, grid, force=options.force, name=options.name or experiment.name,
                      command_line=command_line, store_urls=urls, read_store=not options.rerun_all)


def _announce(plan: SweepPlan, rerun_all: bool, out: IO[str]) -> None:
    where = f"store {plan.store_label}" if plan.store_label else \
        "no file store or MongoDB among the observers, so nothing to resume from"
    print(f"sweep {plan.id} of {plan.experiment} (seed {plan.seed}; {where}): {plan.summary(rerun_all)}",
          file=out, flush=True)


def sweep_command_line(experiment: Any, cl: Any, argv: Sequence[str]) -> int:
    """``python exp.py -M [COMMAND] with ...``: plan, run what is left, print the table; the exit status."""
    from labrun.sweeps.grid import parse_multirun_tokens
    from labrun.sweeps.launchers import create_launcher

    if not cl.update_tokens:
        raise CommandLineError("-M sweeps the updates after 'with', e.g. -M with lr=0.1,0.01 model=svm,forest")
    launcher = create_launcher(cl.options.launcher or "local", cl.options.jobs, cl.options.wait)
    plan = _prepare(experiment, cl.command, parse_multirun_tokens(cl.update_tokens), cl.options,
                    sweep_command_text(argv))
    out = sys.stdout
    _announce(plan, cl.options.rerun_all, out)
    todo = plan.to_run(cl.options.rerun_all)
    own = [f"{flag}={value}" if value is not True else flag for flag, value in cl.extra_options.items()]
    prefix = starter_argv(experiment, cl.command, cl.options.to_argv() + own, False, argv[0] if argv else None)
    outcome = run_launched(plan, todo, launcher, prefix, fail_fast=cl.options.fail_fast, out=out,
                           code_dir=code_folder(experiment))
    return report(outcome, out)


def sweep_from_python(experiment: Any, grid: Mapping[str, Any] | str, *, jobs: int, command_name: str | None,
                      config_updates: Mapping[str, Any] | None, named_configs: Sequence[str],
                      options: dict[str, Any] | None, rerun_all: bool, fail_fast: bool,
                      launcher: str) -> list[SweepRun]:
    """``ex.sweep(...)``: the same plan and resume rules as ``-M``; one job runs in this process."""
    from labrun.cli.options import Options
    from labrun.sweeps.grid import grid_from_mapping, load_sweep_file, value_token
    from labrun.sweeps.launchers import create_launcher

    run_options = Options.from_mapping({**(options or {}), "jobs": jobs, "rerun_all": rerun_all,
                                        "fail_fast": fail_fast, "launcher": launcher, "multirun": True})
    run_options.check_sweep()
    parsed = load_sweep_file(grid) if isinstance(grid, (str, os.PathLike)) else grid_from_mapping(grid)
    parsed.fixed = [*named_configs, *(value_token(str(k), v) for k, v in (config_updates or {}).items()),
                    *parsed.fixed]
    text = f"{experiment.name}.sweep({grid!r}, jobs={jobs})"
    plan = _prepare(experiment, command_name, parsed, run_options, text)
    out = sys.stdout
    _announce(plan, rerun_all, out)
    todo = plan.to_run(rerun_all)
    if jobs == 1 and launcher == "local":
        outcome = run_in_process(experiment, plan, todo, command_name, options, fail_fast=fail_fast, out=out)
    else:
        prefix = starter_argv(experiment, command_name, run_options.to_argv(), True)
        outcome = run_launched(plan, todo, create_launcher(launcher, jobs), prefix, fail_fast=fail_fast, out=out,
                               code_dir=code_folder(experiment))
    report(outcome, out)
    if outcome.interrupted:
        raise KeyboardInterrupt(f"sweep {plan.id} interrupted; run it again to resume")
    return outcome.runs
