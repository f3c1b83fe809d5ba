"""A real Ray head for the launcher tests: ``ray start --head --block`` on 127.0.0.1 with free ports and a
short temp folder, stopped by its own process group and by a marker every process it started carries.

Never ``ray stop``: that stops every Ray on the machine. The head's workers run in process groups of
their own, so stopping the head's group is not enough; each of them (and each run a worker started)
inherits the marker environment variable, which is how the fixture finds what is its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from servers import free_port

MARKER_ENV = "LABRUN_TEST_RAY_HEAD"
#: Ray swaps 127.0.0.1 for the machine's own address unless told not to (engines.md); drivers need it too.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class RayHead:
    def __init__(self) -> None:
        self.marker = uuid.uuid4().hex
        self.port = free_port()
        self.client_port = free_port()
        # Ray's unix socket paths must fit in ~107 bytes: a short folder, not pytest's deep tmp_path
        self.temp_dir = tempfile.mkdtemp(prefix="lr-ray-", dir="/tmp")
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(self.temp_dir, "head.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_address(self) -> str:
        """Ray Client's address, as a machine outside the cluster uses it."""
        return f"ray://127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 180.0) -> "RayHead":
        ray = os.path.join(os.path.dirname(sys.executable), "ray")
        env = {**os.environ, **RAY_ENV, MARKER_ENV: self.marker}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [ray, "start", "--head", "--block", "--port", str(self.port), "--num-cpus", "2",
                 "--include-dashboard=false", "--node-ip-address", "127.0.0.1", "--temp-dir", self.temp_dir,
                 "--ray-client-server-port", str(self.client_port), "--dashboard-agent-listen-port", str(free_port()),
                 "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
                 "--metrics-export-port", str(free_port()), "--disable-usage-stats"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # ready when a driver can connect and sees the node
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}: {self.log_tail()}")
            probe = subprocess.run(
                [sys.executable, "-c", "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
                 "print(sum(n['Alive'] for n in ray.nodes()))", self.address],
                env={**os.environ, **RAY_ENV}, capture_output=True, text=True, timeout=timeout)
            if probe.returncode == 0 and probe.stdout.strip().endswith("1"):
                return self
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the Ray head did not come up within {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return "(no log)"

    def own_processes(self) -> list[int]:
        """Every process carrying this head's marker: the head's daemons, its workers and their runs."""
        needle = f"{MARKER_ENV}={self.marker}".encode()
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                continue
        return found

    def stop(self, timeout: float = 60.0) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        deadline = time.monotonic() + timeout
        while self.own_processes() and time.monotonic() < deadline:
            for pid in self.own_processes():
                try:
                    os.kill(pid, signal.SIGTERM if time.monotonic() < deadline - timeout / 2 else signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
