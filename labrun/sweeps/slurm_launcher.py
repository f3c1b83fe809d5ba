"""``--launcher slurm[:partition=...,time=MIN,cpus=N,mem=4G,gpus=N,...]``: a sweep as one Slurm job array,
submitted through submitit (``labrun[slurm]``), one array task per run, ``-j`` tasks at a time.

By default the array is submitted and the command returns with the job id; ``--wait`` stays, with the
local sweep's progress line and table. Each task starts the run's command line from a snapshot of the
experiment's folder taken at submission (in the submitit folder, which Slurm requires to be shared), in
the folder the sweep was started from, so editing the code while tasks wait in the queue changes nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
import time
from typing import Any, Sequence

from labrun.errors import CommandLineError
from labrun.sweeps.launchers import TICK_SECONDS, EventSink, Launcher, SweepSetup, Task
from labrun.sweeps.remote import check_stores_reachable, flag_option, remote_task, snapshot_code
from labrun.sweeps.worker import RemoteTask, exit_status, run_task

#: --launcher slurm's options and the submitit/sbatch parameter each sets (None: handled here).
PARAMETERS = {
    "partition": ("partition", "the partition (sbatch --partition)"),
    "time": ("time", "the time limit in minutes (sbatch --time) [default: 60]"),
    "cpus": ("cpus_per_task", "CPUs per run (sbatch --cpus-per-task)"),
    "mem": ("mem", "memory per run, e.g. 4G (sbatch --mem)"),
    "gpus": ("gpus_per_node", "GPUs per run (sbatch --gpus-per-node)"),
    "account": ("account", "the account charged (sbatch --account)"),
    "qos": ("qos", "the quality of service (sbatch --qos)"),
    "constraint": ("constraint", "node features required (sbatch --constraint)"),
    "exclude": ("exclude", "nodes to leave out (sbatch --exclude)"),
    "nodelist": ("nodelist", "nodes to use (sbatch --nodelist)"),
    "job_name": ("job_name", "the job's name in squeue [default: labrun-SWEEP_ID]"),
    "signal_delay": ("signal_delay_s", "seconds before the time limit each run gets SIGUSR2 and records "
                                       "itself INTERRUPTED [default: 90]"),
    "requeue": (None, "true: let Slurm requeue a preempted task or one on a failed node (sbatch --requeue)"),
    "additional_parameters": (None, "other sbatch options, KEY=VALUE;KEY=VALUE (e.g. reservation=foo;nice=10)"),
    "folder": (None, "where submitit writes its files and the code snapshot; every node must see it "
                     "[default: the sweep's folder]"),
    "python": (None, "the Python on the compute nodes [default: this one]"),
    "shared_fs": (None, "true when the stores' folders are on a filesystem every node shares"),
}
NUMBERS = ("time", "cpus", "gpus", "signal_delay")
QUEUE_LOOK_SECONDS = 10.0  # how often --wait asks squeue which tasks are still queued or running


def _slurm_task(task: RemoteTask, snapshot: str) -> tuple[int | None, bytes]:
    """In a Slurm task, under submitit's job wrapper: run the task and say where it ran.

    Slurm signals every process of the job itself (scancel: SIGTERM; the time limit: SIGUSR2 first, as
    submitit asks), so the run records itself INTERRUPTED. Meanwhile this wrapper only waits for it:
    submitit's own handlers (which requeue or abandon the job on SIGUSR2) are set aside while the run lasts.
    """
    env = os.environ
    meta = {"name": "slurm", "job_id": env.get("SLURM_ARRAY_JOB_ID") or env.get("SLURM_JOB_ID"),
            "array_task_id": int(env["SLURM_ARRAY_TASK_ID"]) if env.get("SLURM_ARRAY_TASK_ID") else None,
            "node": env.get("SLURMD_NODENAME") or socket.gethostname(),
            "restart_count": int(env.get("SLURM_RESTART_COUNT") or 0)}
    # A handler that does nothing, not SIG_IGN: the run would inherit an ignored signal, but not a handler.
    previous = {sig: signal.signal(sig, _note_signal) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)}
    try:
        return run_task(task, snapshot, meta)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _note_signal(signum: int, frame: Any) -> None:
    """The run got the same signal from Slurm and records itself; this wrapper keeps waiting for it."""


class SlurmLauncher(Launcher):
    """One job array per sweep; runs record themselves; resubmitting the sweep resumes it."""

    remote = True
    detaches = True
    accepted_options = {name: help_text for name, (_, help_text) in PARAMETERS.items()}

    @property
    def name(self) -> str:
        return "slurm"

    def __init__(self, options: dict[str, str], jobs: int, wait: bool = True):
        super().__init__(options, jobs, wait)
        for name in NUMBERS:
            if name in options and not options[name].isdigit():
                raise CommandLineError(f"--launcher slurm:{name}={options[name]}: write a whole number, e.g. "
                                       f"{name}={'60' if name == 'time' else '1'}")
        self.shared_fs = flag_option(options, "shared_fs", "slurm")
        self.requeue = flag_option(options, "requeue", "slurm")
        self.additional = _additional_parameters(options.get("additional_parameters", ""))
        self.setup: SweepSetup | None = None
        self.executor: Any = None
        self.snapshot = ""
        self._cancels_asked = 0

    def prepare(self, setup: SweepSetup) -> None:
        try:
            import submitit
        except ImportError:
            raise CommandLineError("--launcher slurm submits through submitit: pip install 'labrun[slurm]'") \
                from None
        import shutil

        if shutil.which("sbatch") is None:
            raise CommandLineError("--launcher slurm: there is no sbatch here; run the sweep on a machine that "
                                   "submits to your Slurm cluster (a login node)")
        folder = os.path.abspath(self.options.get("folder") or os.path.join(setup.folder, "slurm"))
        check_stores_reachable("slurm", setup.store_urls, self.shared_fs, extra_folders=[folder])
        os.makedirs(folder, exist_ok=True)
        self.snapshot = tempfile.mkdtemp(prefix="code-", dir=folder)
        snapshot_code(setup, self.snapshot)
        executor = submitit.SlurmExecutor(folder=os.path.join(folder, "%j"), python=self.options.get("python"))
        parameters: dict[str, Any] = {"job_name": f"labrun-{setup.sweep_id}", "time": 60,
                                      "array_parallelism": self.jobs, "stderr_to_stdout": True}
        for name, value in self.options.items():
            target = PARAMETERS[name][0]
            if target is not None:
                parameters[target] = int(value) if name in NUMBERS else value
        additional: dict[str, Any] = dict(self.additional)
        if self.requeue:
            additional["requeue"] = True
        if additional:
            parameters["additional_parameters"] = additional
        executor.update_parameters(**parameters)
        self.executor, self.setup = executor, setup

    def run(self, tasks: Sequence[Task], on_event: EventSink, stop: threading.Event) -> str | None:
        assert self.setup is not None, "prepare() comes first"
        if not tasks:
            return None
        work = [remote_task(task, self.setup, True, log=task.log) for task in tasks]
        jobs = self.executor.map_array(_slurm_task, work, [self.snapshot] * len(work))
        array_id = str(jobs[0].job_id).split("_")[0]
        if not self.wait:
            return f"submitted {len(jobs)} run(s) to Slurm as job {array_id} (follow it with `squeue -j {array_id}`)"
        self._wait(jobs, tasks, on_event, stop)
        return None

    def _wait(self, jobs: list[Any], tasks: Sequence[Task], on_event: EventSink, stop: threading.Event) -> None:
        waiting = dict(zip((task.index for task in tasks), zip(jobs, tasks)))
        started: set[int] = set()
        unlisted: dict[int, int] = {}  # how many looks at squeue in a row did not list a task
        cancels_done, withdrawn, last_look = 0, False, time.monotonic()
        while waiting:
            if cancels_done < self._cancels_asked:  # Ctrl-C, from a signal handler; scancel runs from here
                cancels_done = self._cancels_asked
                for job, _ in waiting.values():
                    job.cancel(check=False)
            elif stop.is_set() and not withdrawn:  # --fail-fast: the tasks still queued never start
                withdrawn = True
                for index, (job, _) in waiting.items():
                    if index not in started:
                        job.cancel(check=False)
            if time.monotonic() - last_look >= QUEUE_LOOK_SECONDS:
                last_look = time.monotonic()
                self._count_unlisted(waiting, unlisted)
            for index, (job, task) in list(waiting.items()):
                if index not in started and os.path.exists(task.log):  # the worker opened it: the run began
                    started.add(index)
                    on_event("started", index, None)
                done = job.done()
                if done or unlisted.get(index, 0) >= 2:
                    del waiting[index]
                    code = self._outcome(job, task) if done else self._gone(job, task)
                    # one withdrawn or cancelled while queued stays NOT RUN; one that failed to start is told
                    if index in started or (done and not stop.is_set()):
                        on_event("ended", index, code)
            time.sleep(TICK_SECONDS)
            on_event("tick", -1, None)

    @staticmethod
    def _count_unlisted(waiting: dict[int, tuple[Any, Task]], unlisted: dict[int, int]) -> None:
        """submitit learns that a task ended without a result (cancelled while queued, failed before the run
        started) only from ``sacct``, which answers nothing on a cluster without accounting; a task that
        squeue no longer lists either has ended all the same."""
        import subprocess

        array_ids = {str(job.job_id).split("_")[0] for job, _ in waiting.values()}
        try:
            listed = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(sorted(array_ids))],
                                    capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return
        if listed.returncode != 0:  # squeue itself failed: it says nothing about the tasks
            return
        queued = set(listed.stdout.split())
        for index, (job, _) in waiting.items():
            unlisted[index] = 0 if str(job.job_id) in queued else unlisted.get(index, 0) + 1

    @staticmethod
    def _gone(job: Any, task: Task) -> None:
        with open(task.log, "a", encoding="utf-8") as log:
            log.write(f"labrun: Slurm no longer lists task {job.job_id} and it left no result (cancelled or failed "
                      f"before its run could start, or its node was lost); `sacct -j {job.job_id}` says which\n")
        return None

    @staticmethod
    def _outcome(job: Any, task: Task) -> int | None:
        try:
            code, _ = job.result()
        except Exception as exc:  # cancelled before it started, node failure: the store says the rest
            with open(task.log, "a", encoding="utf-8") as log:
                log.write(f"labrun: Slurm task {job.job_id} ended without an exit status: {exc}\n")
            return None
        return exit_status(code)

    def interrupt(self) -> None:
        self._cancels_asked += 1


def _additional_parameters(text: str) -> dict[str, str]:
    parameters = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CommandLineError(f"--launcher slurm:additional_parameters: write KEY=VALUE;KEY=VALUE (sbatch's "
                                   f"long option names without --), got '{item}'")
        parameters[key.strip().replace("-", "_")] = value.strip()
    return parameters
