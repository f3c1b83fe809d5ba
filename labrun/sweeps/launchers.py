"""Where a sweep's runs start: a small launcher interface, chosen with ``--launcher NAME[:KEY=VALUE,...]``.

A launcher gets each run as a command line (the one ``python exp.py with ...`` would take), the environment
it adds and a file for the run's terminal output. It reports when each run starts and ends; the runs record
themselves through their observers, as any run does. ``local`` (a pool of processes on this machine),
``ray`` and ``slurm`` (ray_launcher.py, slurm_launcher.py) are built in; other packages add engines through
the entry-point group ``labrun.launchers``: the entry point's name is the launcher's name and its object a
:class:`Launcher` subclass (docs/launchers.md).
"""

from __future__ import annotations

import collections
import importlib
import os
import signal
import subprocess
import queue
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Sequence

from labrun.errors import CommandLineError
from labrun._util.suggest import did_you_mean

ENTRY_POINT_GROUP = "labrun.launchers"
BUILTIN_LAUNCHERS = {"local": "labrun.sweeps.launchers:LocalLauncher",
                     "ray": "labrun.sweeps.ray_launcher:RayLauncher",
                     "slurm": "labrun.sweeps.slurm_launcher:SlurmLauncher"}
TICK_SECONDS = 1.0  # the progress line's elapsed time and ETA are refreshed at least this often


@dataclass
class Task:
    """One run to start: its command line, the environment it adds, where it starts and its output file."""

    index: int
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."
    log: str = os.devnull


@dataclass
class SweepSetup:
    """What a launcher learns before any run starts (see :meth:`Launcher.prepare`)."""

    sweep_id: str
    code_dir: str  # the experiment's folder: what a remote launcher copies so queued runs keep their code
    store_urls: list[str]  # where the runs record themselves: a remote launcher checks workers reach them
    folder: str  # the sweep's own folder on this machine (each run's output, a launcher's files)


#: on_event(kind, index, exit_code): kind is "started" or "ended" (exit_code set; None when the engine lost
#: the run's process and cannot tell), or "tick" (index -1) at least every second while runs go on, so a
#: caller can refresh its progress line.
EventSink = Callable[[str, int, "int | None"], None]


class Launcher(ABC):
    """Starts tasks, at most ``jobs`` at a time, and reports their start and end."""

    #: True when runs may start on other machines: their observers must then be reachable from there.
    remote = False
    #: True when the launcher can hand the runs to a queue and return (``--wait`` makes it stay).
    detaches = False
    #: The options ``--launcher NAME:KEY=VALUE`` accepts, with a line of help each.
    accepted_options: dict[str, str] = {}

    def __init__(self, options: dict[str, str], jobs: int, wait: bool = True):
        unknown = sorted(set(options) - set(self.accepted_options))
        if unknown:
            known = ", ".join(self.accepted_options) or "none"
            raise CommandLineError(f"launcher '{self.name}' has no option '{unknown[0]}'"
                                   f"{did_you_mean(unknown[0], self.accepted_options)}; its options: {known}")
        self.options = options
        self.jobs = jobs
        self.wait = wait or not self.detaches

    @property
    def name(self) -> str:
        return type(self).__name__

    def prepare(self, setup: SweepSetup) -> None:  # noqa: B027 (a hook: most launchers need nothing here)
        """Check and set up what the runs need before any starts (connect, copy the code); raise
        :class:`~labrun.errors.CommandLineError` for what can never work, such as a store the workers cannot
        reach. Nothing to do for a launcher on this machine."""

    @abstractmethod
    def run(self, tasks: Sequence[Task], on_event: EventSink, stop: threading.Event) -> str | None:
        """Run every task; return when all ended. Once ``stop`` is set, start no more and return when the
        running ones ended. A launcher that ``detaches`` and was not asked to wait returns once the runs are
        queued, with a message saying where they went and how to follow them."""

    @abstractmethod
    def interrupt(self) -> None:
        """Ask the running tasks to stop as Ctrl-C does (they record themselves INTERRUPTED); may be called
        from a signal handler, and again to hurry them."""


class LocalLauncher(Launcher):
    """Processes on this machine, ``jobs`` at a time. Each starts in its own session, so a Ctrl-C on the
    terminal reaches only the sweep, which passes it on once to each run (to its whole process group)."""

    @property
    def name(self) -> str:
        return "local"

    def __init__(self, options: dict[str, str], jobs: int, wait: bool = True):
        super().__init__(options, jobs, wait)
        self._running: dict[int, subprocess.Popen] = {}

    def run(self, tasks: Sequence[Task], on_event: EventSink, stop: threading.Event) -> None:
        pending = collections.deque(tasks)
        ended: queue.Queue[tuple[int, int]] = queue.Queue()  # filled by one waiting thread per process
        while pending or self._running:
            while pending and len(self._running) < self.jobs and not stop.is_set():
                task = pending.popleft()
                process = self._running[task.index] = self._start(task)
                threading.Thread(target=lambda i=task.index, p=process: ended.put((i, p.wait())), daemon=True,
                                 name=f"labrun-sweep-wait-{task.index}").start()
                on_event("started", task.index, None)
            if not self._running:
                return  # stopped with runs left
            try:
                index, code = ended.get(timeout=TICK_SECONDS)
            except queue.Empty:
                on_event("tick", -1, None)
                continue
            del self._running[index]
            on_event("ended", index, 130 if code == -signal.SIGINT else code)

    def _start(self, task: Task) -> subprocess.Popen:
        with open(task.log, "wb") as log:
            return subprocess.Popen(task.argv, cwd=task.cwd, env={**os.environ, **task.env}, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def interrupt(self) -> None:
        for process in list(self._running.values()):
            try:
                os.killpg(process.pid, signal.SIGINT)
            except (ProcessLookupError, PermissionError):
                pass


def parse_launcher(spec: str) -> tuple[str, dict[str, str]]:
    """``slurm:partition=cpu,time=60`` -> ``("slurm", {"partition": "cpu", "time": "60"})``."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CommandLineError(f"--launcher {spec}: write options as NAME:KEY=VALUE,KEY=VALUE, got '{item}'")
        options[key.strip()] = value.strip()
    return name.strip(), options


def create_launcher(spec: str, jobs: int, wait: bool = True) -> Launcher:
    """The launcher ``--launcher`` names, built-in or registered by a package; a clear error otherwise."""
    from importlib.metadata import entry_points

    name, options = parse_launcher(spec)
    if name in BUILTIN_LAUNCHERS:
        module, _, attr = BUILTIN_LAUNCHERS[name].partition(":")
        cls = getattr(importlib.import_module(module), attr)
    else:
        registered = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if name not in registered:
            known = sorted(set(BUILTIN_LAUNCHERS) | set(registered))
            raise CommandLineError(f"no launcher '{name}'{did_you_mean(name, known)}; known launchers: "
                                   f"{', '.join(known)}. A package adds one through the entry-point group "
                                   f"'{ENTRY_POINT_GROUP}'")
        cls = registered[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Launcher)):
        raise CommandLineError(f"launcher '{name}' ({cls!r}) is not a labrun.sweeps.launchers.Launcher")
    return cls(options, jobs, wait)
