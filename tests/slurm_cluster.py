"""A real single-node Slurm cluster with accounting, in a folder, on 127.0.0.1, for the Slurm launcher tests.

Needs root and Debian's ``slurm-wlm munge slurmdbd mariadb-server-core mariadb-client-core`` packages
(docs/launchers.md). Every daemon runs in the foreground as a child of this process with its files in the
folder: munged (its own key and socket), a private MariaDB, slurmdbd, slurmctld and slurmd, on free
loopback ports. Accounting matters: submitit learns that a task ended without a result (cancelled before it
started) only through ``sacct``. ``stop()`` cancels every job, then stops each daemon by its own PID and
any job process that carries this cluster's marker.

By hand: ``python tests/slurm_cluster.py DIR`` starts one and prints the ``SLURM_CONF`` to export; Ctrl-C
stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import free_port  # noqa: E402

MARKER_ENV = "LABRUN_TEST_SLURM_CLUSTER"
PACKAGES = "slurm-wlm munge slurmdbd mariadb-server-core mariadb-client-core"
NEEDED = ("munged", "mungekey", "mariadbd", "mariadb-install-db", "mariadb", "slurmdbd", "slurmctld", "slurmd",
          "sacctmgr", "sbatch")


def missing_programs() -> list[str]:
    return [name for name in NEEDED if shutil.which(name) is None and not os.path.exists(f"/usr/sbin/{name}")]


def _program(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class SlurmCluster:
    def __init__(self, folder: str, accounting: bool = True):
        self.folder = os.path.abspath(folder)
        self.accounting = accounting  # False: no MariaDB and slurmdbd, so sacct answers nothing (some sites)
        self.marker = uuid.uuid4().hex
        self.name = "labrun"
        self.munge_socket = os.path.join(self.folder, "munge", "munge.sock")
        self.conf = os.path.join(self.folder, "etc", "slurm.conf")
        self.db_port, self.dbd_port, self.ctld_port, self.slurmd_port = (free_port() for _ in range(4))
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, submitit) needs to talk to this cluster."""
        return {"SLURM_CONF": self.conf}

    # -- starting -----------------------------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> "SlurmCluster":
        if os.geteuid() != 0:
            raise RuntimeError("the test Slurm cluster runs its daemons as root")
        missing = missing_programs()
        if missing:
            raise RuntimeError(f"missing {', '.join(missing)}: apt-get install {PACKAGES}")
        for sub in ("etc", "munge", "db", "state", "spool", "log", "run"):
            os.makedirs(os.path.join(self.folder, sub), exist_ok=True)
        os.chmod(os.path.join(self.folder, "munge"), 0o700)
        deadline = time.monotonic() + timeout
        try:
            self._start_munge(deadline)
            if self.accounting:
                self._start_database(deadline)
            self._write_configs()
            if self.accounting:
                self._daemon("slurmdbd", [_program("slurmdbd"), "-D"])
                self._wait(deadline, "slurmdbd",
                           lambda: self._run("sacctmgr", "-n", "list", "cluster").returncode == 0)
                self._run("sacctmgr", "-i", "add", "cluster", self.name, check=True)
            self._daemon("slurmctld", [_program("slurmctld"), "-D", "-i"])
            self._daemon("slurmd", [_program("slurmd"), "-D", "-N", "localhost"])
            self._wait(deadline, "the node to be idle",
                       lambda: self._run("sinfo", "-h", "-o", "%T").stdout.strip() == "idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self, deadline: float) -> None:
        key = os.path.join(self.folder, "munge", "munge.key")
        subprocess.run([_program("mungekey"), "-c", "-f", "-k", key], check=True, capture_output=True)
        os.chmod(key, 0o600)
        self._daemon("munged", [_program("munged"), "-F", "--force", "--key-file", key, "--socket",
                                self.munge_socket, "--pid-file", os.path.join(self.folder, "run", "munged.pid"),
                                "--log-file", os.path.join(self.folder, "log", "munged.log"),
                                "--seed-file", os.path.join(self.folder, "munge", "munged.seed")])
        self._wait(deadline, "munged", lambda: os.path.exists(self.munge_socket))

    def _start_database(self, deadline: float) -> None:
        datadir = os.path.join(self.folder, "db")
        socket_path = os.path.join(self.folder, "run", "mysqld.sock")
        if not os.path.exists(os.path.join(datadir, "mysql")):
            subprocess.run([_program("mariadb-install-db"), "--no-defaults", f"--datadir={datadir}", "--user=root",
                            "--auth-root-authentication-method=socket", "--skip-test-db"],
                           check=True, capture_output=True)
        self._daemon("mariadbd", [_program("mariadbd"), "--no-defaults", f"--datadir={datadir}", "--user=root",
                                  f"--socket={socket_path}", f"--port={self.db_port}", "--bind-address=127.0.0.1",
                                  f"--pid-file={os.path.join(self.folder, 'run', 'mysqld.pid')}",
                                  "--skip-log-bin", "--innodb-buffer-pool-size=64M"])
        sql = [_program("mariadb"), "--no-defaults", f"--socket={socket_path}", "-u", "root"]
        self._wait(deadline, "MariaDB", lambda: subprocess.run([*sql, "-e", "SELECT 1"],
                                                               capture_output=True).returncode == 0)
        subprocess.run([*sql, "-e", "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm'; "
                        "GRANT ALL ON *.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"], check=True, capture_output=True)

    def _write_configs(self) -> None:
        path = lambda *parts: os.path.join(self.folder, *parts)  # noqa: E731
        cpus = os.cpu_count() or 1
        accounting = (f"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\n"
                      f"AccountingStoragePort={self.dbd_port}\nAccountingStoragePass={self.munge_socket}\n"
                      if self.accounting else "AccountingStorageType=accounting_storage/none\n")
        slurm_conf = f"""\
ClusterName={self.name}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=30
StateSaveLocation={path('state')}
SlurmdSpoolDir={path('spool')}
SlurmctldPidFile={path('run', 'slurmctld.pid')}
SlurmdPidFile={path('run', 'slurmd.pid')}
SlurmctldLogFile={path('log', 'slurmctld.log')}
SlurmdLogFile={path('log', 'slurmd.log')}
{accounting}JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        dbd_conf = f"""\
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.dbd_port}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
LogFile={path('log', 'slurmdbd.log')}
PidFile={path('run', 'slurmdbd.pid')}
"""
        with open(self.conf, "w") as f:
            f.write(slurm_conf)
        dbd_path = os.path.join(os.path.dirname(self.conf), "slurmdbd.conf")
        with open(os.open(dbd_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(dbd_conf)

    def _daemon(self, name: str, argv: list[str]) -> None:
        log = open(os.path.join(self.folder, "log", f"{name}.out"), "ab")
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env={**os.environ, **self.env, MARKER_ENV: self.marker},
                                                start_new_session=True)
        log.close()

    def _wait(self, deadline: float, what: str, ready) -> None:
        while not ready():
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited while waiting for {what}: {self.log_tail(dead[0])}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}: {self.log_tail(list(self.processes)[-1])}")
            time.sleep(0.2)

    def _run(self, *argv: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([_program(argv[0]), *argv[1:]], env={**os.environ, **self.env}, capture_output=True,
                              text=True, check=check, timeout=60)

    def log_tail(self, name: str) -> str:
        text = ""
        for file in (f"{name}.out", f"{name}.log"):
            try:
                with open(os.path.join(self.folder, "log", file), encoding="utf-8", errors="replace") as f:
                    text += f.read()[-2000:]
            except OSError:
                pass
        return text or "(no log)"

    # -- stopping -----------------------------------------------------------------------------------------------
    def own_processes(self) -> list[int]:
        needle = f"{MARKER_ENV}={self.marker}".encode()
        found = []
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if needle in f.read().split(b"\0") and int(name) != os.getpid():
                        found.append(int(name))
            except OSError:
                continue
        return found

    def stop(self, timeout: float = 60.0) -> None:
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self._run("scancel", "--full", "-u", "root")
            deadline = time.monotonic() + timeout
            while self._run("squeue", "-h").stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):  # the reverse of the start
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in self.own_processes():  # job steps slurmd started and left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    cluster = SlurmCluster(sys.argv[1] if len(sys.argv) > 1 else "slurm-test-cluster").start()
    print(f"Slurm is up: export SLURM_CONF={cluster.conf}   (Ctrl-C stops it)", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
