"""``--launcher ray[:address=...,num_cpus=N,num_gpus=N,shared_fs=true]``: each run of a sweep is a Ray task.

Ray places the tasks; labrun plans them and the runs record themselves through their observers. The code
reaches the workers through Ray's ``runtime_env`` working_dir: a snapshot of the experiment's folder taken
when the sweep starts (labrun/provenance/code_snapshot.py), so a cluster without a shared filesystem works.
``-j N`` caps the tasks in flight. Ray is imported only when this launcher is chosen (``labrun[ray]``).
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import socket
import tempfile
import threading
from typing import Any, Sequence

from labrun.errors import CommandLineError
from labrun.sweeps.launchers import TICK_SECONDS, EventSink, Launcher, SweepSetup, Task
from labrun.sweeps.remote import check_stores_reachable, flag_option, remote_task, snapshot_code
from labrun.sweeps.worker import RemoteTask, exit_status, run_task


def _number(options: dict[str, str], name: str, default: float) -> float:
    try:
        value = float(options.get(name, default))
    except ValueError:
        value = -1.0
    if value < 0:
        raise CommandLineError(f"--launcher ray:{name}={options[name]}: write a number of at least 0, e.g. "
                               f"{name}=1")
    return value


class SweepControl:
    """A Ray actor the sweep's tasks ask whether Ctrl-C was pressed: Ray stops a running task only by killing
    its worker and the worker's children, which would leave the run no time to record itself."""

    def __init__(self) -> None:
        self.interrupts = 0

    def interrupt(self) -> None:
        self.interrupts += 1

    def interrupts_asked(self) -> int:
        return self.interrupts


def _ray_task(task: RemoteTask, control: Any) -> tuple[int | None, bytes]:
    """On a Ray worker, whose working folder is the uploaded snapshot: run the task, say where it ran."""
    import ray

    context = ray.get_runtime_context()
    meta = {"name": "ray", "node_id": context.get_node_id(), "task_id": context.get_task_id(),
            "job_id": context.get_job_id(), "node": socket.gethostname()}

    def interrupts_asked() -> int:
        try:
            return int(ray.get(control.interrupts_asked.remote(), timeout=10))
        except ray.exceptions.GetTimeoutError:  # a busy cluster: no news, ask again in a second
            return 0
        except ray.exceptions.RayError:  # the actor is gone with the sweep: stop the run as its Ctrl-C would
            return 1 << 30

    # Its own session: when the worker dies, Ray ends the worker's process group at once; the run then gets
    # only the SIGTERM of worker.py and has time to record itself INTERRUPTED.
    return run_task(task, os.getcwd(), meta, own_session=True, interrupts_asked=interrupts_asked)


class RayLauncher(Launcher):
    """Runs as Ray tasks on an existing cluster (``ray start``), or through Ray Client (``ray://``)."""

    remote = True
    accepted_options = {
        "address": "the cluster: auto (the one `ray start` runs here, the default), HOST:PORT (its GCS), or "
                   "ray://HOST:10001 (Ray Client)",
        "num_cpus": "CPUs each run reserves [default: 1]",
        "num_gpus": "GPUs each run reserves [default: 0]",
        "shared_fs": "true when every worker sees this machine's folders at the same paths (then runs may "
                     "record to a folder, and start in the folder the sweep started in) [default: true when "
                     "every node of the cluster is this machine]",
    }

    @property
    def name(self) -> str:
        return "ray"

    def __init__(self, options: dict[str, str], jobs: int, wait: bool = True):
        super().__init__(options, jobs, wait)
        self.num_cpus = _number(options, "num_cpus", 1)
        self.num_gpus = _number(options, "num_gpus", 0)
        # None: decided when connected (shared when every node is this machine)
        self.shared_fs = flag_option(options, "shared_fs", "ray") if "shared_fs" in options else None
        self.setup: SweepSetup | None = None
        self.snapshot = ""
        self._cancels_asked = 0

    def prepare(self, setup: SweepSetup) -> None:
        try:
            import ray
        except ImportError:
            raise CommandLineError("--launcher ray needs Ray on this machine: pip install 'labrun[ray]'") from None
        # Ray uploads a working_dir only when it is given to ray.init, so the snapshot comes first.
        self.snapshot = tempfile.mkdtemp(prefix="code-", dir=setup.folder)
        address = self.options.get("address", "auto")
        try:
            _check_answers(address)
            snapshot_code(setup, self.snapshot)
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                         configure_logging=False, runtime_env={"working_dir": self.snapshot})
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise CommandLineError(f"--launcher ray: no Ray cluster at '{address}' ({exc}). Start one with "
                                       f"`ray start --head`, or give its address: --launcher "
                                       f"ray:address=HOST:6379 or ray:address=ray://HOST:10001") from None
            try:
                nodes = [node for node in ray.nodes() if node.get("Alive")]
                here = _local_addresses()
                all_local = bool(nodes) and all(node.get("NodeManagerAddress") in here for node in nodes)
                if self.shared_fs is None:
                    self.shared_fs = all_local
                check_stores_reachable("ray", setup.store_urls, self.shared_fs)
            except BaseException:
                ray.shutdown()
                raise
        except BaseException:
            shutil.rmtree(self.snapshot, ignore_errors=True)
            raise
        self.setup = setup

    def run(self, tasks: Sequence[Task], on_event: EventSink, stop: threading.Event) -> None:
        import ray

        assert self.setup is not None, "prepare() comes first"
        start = ray.remote(_ray_task)
        actor: Any = ray.remote(SweepControl)
        control = actor.options(num_cpus=0).remote()
        pending = collections.deque(tasks)
        running: dict[Any, Task] = {}
        cancels_done = 0
        try:
            while pending or running:
                while pending and len(running) < self.jobs and not stop.is_set():
                    task = pending.popleft()
                    work = remote_task(task, self.setup, bool(self.shared_fs), log=None)
                    ref = start.options(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0,
                                        name=f"labrun-sweep-{self.setup.sweep_id}-{task.index + 1}").remote(
                        work, control)
                    running[ref] = task
                    on_event("started", task.index, None)
                if not running:
                    return None  # stopped with runs left
                if cancels_done < self._cancels_asked:  # asked from a signal handler; Ray is called from here
                    cancels_done = self._cancels_asked
                    control.interrupt.remote()  # each running task passes it on to its run as SIGINT
                done, _ = ray.wait(list(running), num_returns=1, timeout=TICK_SECONDS)
                if not done:
                    on_event("tick", -1, None)
                    continue
                for ref in done:
                    task = running.pop(ref)
                    code = self._finish(ref, task)
                    on_event("ended", task.index, code)
        finally:
            ray.shutdown()
            shutil.rmtree(self.snapshot, ignore_errors=True)  # Ray holds its uploaded copy; this one is spent
        return None

    def _finish(self, ref: Any, task: Task) -> int | None:
        """Write the run's output to its log file; its exit status, None when its worker was lost."""
        import ray

        try:
            code, output = ray.get(ref)
        except ray.exceptions.RayError as exc:  # worker or node died, task cancelled: the store says the rest
            code, output = None, f"labrun: the Ray task ended without an exit status: {exc}\n".encode()
        with open(task.log, "wb") as log:
            log.write(output)
        return exit_status(code)

    def interrupt(self) -> None:
        self._cancels_asked += 1


def _check_answers(address: str) -> None:
    """Something listens at a cluster's address: ray.init would otherwise retry a wrong one for minutes."""
    if address == "auto":  # Ray finds the local cluster itself, and says at once when there is none
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        raise CommandLineError(f"--launcher ray:address={address}: write HOST:PORT (the head's GCS port, 6379 by "
                               f"default) or ray://HOST:PORT (Ray Client, 10001 by default)")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=10).close()
    except OSError as exc:
        raise CommandLineError(f"--launcher ray: nothing answers at {address} ({exc.strerror or exc}); start the "
                               f"cluster with `ray start --head`, or check the address") from None


def _local_addresses() -> set[str]:
    """This machine's IP addresses: a cluster whose every node has one of them is this machine."""
    import psutil

    return {address.address for addresses in psutil.net_if_addrs().values() for address in addresses
            if address.family in (socket.AF_INET, socket.AF_INET6)}
