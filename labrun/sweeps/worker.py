"""What runs on a cluster's worker for one run of a sweep (Slurm task, Ray task): start the run's command
line from the code snapshot, with the run's environment, and report its exit status.

The run is a child process, as with the local launcher, so it records itself exactly as ``python exp.py
with ...`` does. It receives SIGTERM when the worker process dies (a lost or killed worker), so it records
itself INTERRUPTED rather than staying RUNNING; Slurm signals it directly (the job's signals reach every
process of the job).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

from labrun._util.env_vars import CODE_SNAPSHOT_ENV, LAUNCHER_ENV
from labrun.provenance.code_snapshot import DESCRIPTION_FILE


@dataclass
class RemoteTask:
    """One run as a worker starts it. Paths are the submitting machine's: ``origin`` is the experiment's
    folder the snapshot was copied from; arguments under it are moved into the snapshot on the worker."""

    index: int
    args: list[str]  # the command line without its interpreter: [script, ...] or ["-m", module, ...]
    env: dict[str, str]  # added to the worker's: the submitting shell's LABRUN_* settings and the run's own
    cwd: str
    origin: str
    shared_fs: bool
    log: str | None = None  # where the worker writes the run's output (a shared folder); None: returned


def relocated(task: RemoteTask, snapshot: str) -> tuple[list[str], str]:
    """The task's arguments and working folder on this worker, with its code from ``snapshot``.

    With a shared filesystem the run starts where the sweep was started (relative paths in the config and
    the observers mean what they meant there); without one, in the snapshot's copy of that folder (or the
    snapshot itself when the sweep started outside the experiment's folder)."""
    def move(path: str) -> str:
        if os.path.isabs(path) and (path == task.origin or path.startswith(task.origin + os.sep)):
            return os.path.join(snapshot, os.path.relpath(path, task.origin))
        return path

    args = [move(arg) for arg in task.args]
    if task.shared_fs:
        return args, task.cwd
    moved = move(task.cwd)
    return args, moved if moved != task.cwd else snapshot


def _prepare_child() -> None:
    """In the run's process, before it starts: the signals the run records itself on act again (engines'
    workers may ignore or block them, and an ignored SIGINT would be inherited), and SIGTERM comes when the
    worker that started it dies (Linux)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_task(task: RemoteTask, snapshot: str, launcher_meta: dict[str, Any], *, own_session: bool = False,
             interrupts_asked: Callable[[], int] | None = None) -> tuple[int | None, bytes]:
    """Run one task to its end; its exit status and, when it has no shared log file, its output.

    ``own_session``: start the run in a session of its own, for engines that kill a dead worker's whole
    process group at once (Ray); it then gets only the SIGTERM above and has time to record itself.

    A SIGINT to this process is passed on to the run, which is waited for, so it records itself; so is each
    interrupt the sweep asks for through ``interrupts_asked`` (a count, looked at every second), for engines
    that can stop a task only by killing it (Ray)."""
    args, cwd = relocated(task, snapshot)
    env = {**os.environ, **task.env, LAUNCHER_ENV: json.dumps(launcher_meta),
           CODE_SNAPSHOT_ENV: os.path.join(snapshot, DESCRIPTION_FILE)}
    if task.log:
        log_path = task.log
    else:  # not in the snapshot: the engine may share that folder between tasks
        handle, log_path = tempfile.mkstemp(prefix=f"labrun-run-{task.index + 1}-", suffix=".log")
        os.close(handle)
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, preexec_fn=_prepare_child,
                                   start_new_session=own_session)
    code, passed_on = None, 0
    while code is None:
        try:
            code = process.wait(timeout=None if interrupts_asked is None else 1.0)
        except subprocess.TimeoutExpired:  # only with interrupts_asked: look whether the sweep asks for one
            asked = interrupts_asked() if interrupts_asked else 0
            if asked > passed_on:
                passed_on = asked
                process.send_signal(signal.SIGINT)
        except KeyboardInterrupt:  # a SIGINT to this worker is passed on, each time, as Ctrl-C would be
            process.send_signal(signal.SIGINT)
    if task.log:
        return code, b""
    with open(log_path, "rb") as f:
        output = f.read()
    os.unlink(log_path)
    return code, output


def exit_status(code: int | None) -> int | None:
    """A child's exit status as a shell reports it: -15 (killed by SIGTERM) becomes 143."""
    return 128 - code if code is not None and code < 0 else code
