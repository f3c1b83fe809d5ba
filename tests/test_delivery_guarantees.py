"""Nothing recorded is lost or corrupted, and nothing needs a manual step: full disks under the file store and
under the journal, `labrun sync` of a whole journal, the background delivery that finishes after the run's
process exited, a second Ctrl-C during the end-of-run wait, and run ids under 32 concurrent runs.

A full disk is a real one: a small tmpfs mounted by the test (root), filled with a ballast file that the
test removes to give the space back. Each such test also runs with ENOSPC injected at the write call
(tests/full_disk_injection), which needs no root.
"""

import contextlib
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labrun.stores.metrics_file import read_metrics

HANG_GUARD = 300  # seconds: only a hang fails on it, never a slow machine

LOGGER = """
import os, sys, time
from labrun import Experiment
ex = Experiment("guarded")

@ex.config
def cfg():
    n = 1000
    flag = ""  # wait for this file to exist before ending (the test frees space meanwhile)

@ex.main
def main(n, flag, _run):
    for i in range(n):
        _run.log_scalar("loss", float(i))
    print("logged", n, flush=True)
    if flag:
        deadline = time.monotonic() + 300
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.05)
    return n

ex.run_commandline()
"""


@pytest.fixture(params=["tmpfs", "injected ENOSPC"])
def full_disk(request, monkeypatch):
    """A disk that is full, as a context manager ``full_disk(path, size_mb, free_kb)`` that yields the
    ballast file whose removal gives the space back.

    "tmpfs": a real tmpfs of ``size_mb`` mounted at ``path`` (root only; skipped otherwise) and filled up to
    ``free_kb`` free, unmounted at the end. "injected ENOSPC": for machines that cannot mount one, the
    processes the test starts load tests/full_disk_injection, which makes writes under ``path`` fail with
    ENOSPC once ``free_kb`` are written, until the ballast is removed.
    """
    @contextlib.contextmanager
    def make(path: Path, size_mb: int, free_kb: int):
        path.mkdir(parents=True, exist_ok=True)
        ballast = path / "ballast"
        if request.param == "injected ENOSPC":
            ballast.write_bytes(b"")
            injection = str(Path(__file__).with_name("full_disk_injection"))
            monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [injection, os.environ.get("PYTHONPATH")])))
            monkeypatch.setenv("LABRUN_TEST_FULL_DISK", str(path))
            monkeypatch.setenv("LABRUN_TEST_FULL_DISK_FREE", str(free_kb * 1024))
            yield ballast
            return
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}; the injected "
                        f"ENOSPC variant of this test covers it")
        try:
            total = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
            with open(ballast, "wb") as f:
                f.write(b"\0" * (total - free_kb * 1024))
            yield ballast
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)

    return make


class Watched:
    """A process whose stderr is read line by line as it comes."""

    def __init__(self, args, env, cwd, **popen):
        self.lines: list[str] = []
        self.process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, **popen)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = HANG_GUARD) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.lines)}")

    def finish(self, timeout: float = HANG_GUARD) -> str:
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(10)
        return "".join(self.lines)


def env_for(tmp_path, **extra):
    return {**os.environ, "NO_COLOR": "1", "LABRUN_JOURNAL_DIR": str(tmp_path / "journal"), **extra}


def sync(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, "-m", "labrun", "sync", "--journal", str(tmp_path / "journal"), *args],
                          capture_output=True, text=True, timeout=HANG_GUARD, env=env)


def assert_complete(run_dir: Path, n: int, status: str = "COMPLETED"):
    assert json.loads((run_dir / "run.json").read_text())["status"] == status
    for line in (run_dir / "metrics.jsonl").read_bytes().splitlines():
        json.loads(line)  # every line parses: no cut line, no batch glued to one
    steps = json.loads((run_dir / "metrics.json").read_text())["loss"]["steps"]
    assert steps == list(range(n))


# -- 1. a full disk under the file store -------------------------------------------------------------------
@pytest.mark.parametrize("freed", ["during the run", "after the run, then labrun sync"])
def test_a_full_disk_under_the_file_store_loses_and_corrupts_nothing(script, tmp_path, freed, full_disk):
    exp = script(LOGGER)
    n, flag = 300_000, tmp_path / "space-freed"
    with full_disk(tmp_path / "disk", size_mb=64, free_kb=1024) as ballast:
        store = tmp_path / "disk" / "runs"
        args = [sys.executable, str(exp.path), "-F", str(store), "with", f"n={n}"]
        if freed == "during the run":
            args.append(f"flag={flag}")
        proc = Watched(args, env_for(tmp_path), exp.path.parent)
        proc.wait_for(r"No space left on device")
        if freed == "during the run":
            ballast.unlink()
            flag.touch()
            output = proc.finish()
            assert proc.process.returncode == 0, output
        else:
            output = proc.finish()
            assert proc.process.returncode == 0, output
            assert "labrun sync" in output
            assert json.loads((store / "1" / "run.json").read_text())["status"] == "RUNNING"
            ballast.unlink()
            synced = sync(tmp_path)
            assert synced.returncode == 0, synced.stdout + synced.stderr
            assert "delivered to FileStorageObserver" in synced.stdout
        assert_complete(store / "1", n)
        assert not (tmp_path / "journal").exists() or not os.listdir(tmp_path / "journal")


def test_the_file_store_reader_skips_a_cut_line_and_reads_the_rest(tmp_path):
    """A metrics.jsonl that labrun before this fix left behind: a cut line with the retried batch glued to it."""
    from labrun.recording.metric_codec import encode_points
    from array import array

    from labrun.readback.file_store import FileStoreReader

    def line(first, count):
        points = array("d", [x for i in range(first, first + count) for x in (i, float(i), 1e9 + i)])
        return b'{"name":"loss","points":"' + encode_points(points) + b'"}\n'

    run = tmp_path / "runs" / "1"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "RUNNING", "experiment": {"sources": []}}))
    cut = line(10, 10)[:100]
    (run / "metrics.jsonl").write_bytes(line(0, 10) + cut + line(10, 10) + line(20, 10) + cut)
    series = read_metrics(str(run))["loss"]
    assert list(series["steps"]) == list(range(10)) + list(range(20, 30))
    assert FileStoreReader(str(tmp_path / "runs")).run(1).final_metrics == {"loss": 29.0}


# -- 2. a full disk under the journal ----------------------------------------------------------------------
def test_a_full_disk_under_the_journal_keeps_every_point_until_space_returns(script, tmp_path, full_disk):
    exp = script(LOGGER)
    n, flag = 400_000, tmp_path / "space-freed"
    with full_disk(tmp_path / "disk", size_mb=32, free_kb=512) as ballast:
        journal = tmp_path / "disk" / "journal"
        env = env_for(tmp_path, LABRUN_JOURNAL_DIR=str(journal))
        proc = Watched([sys.executable, str(exp.path), "-F", str(tmp_path / "runs"), "with", f"n={n}",
                        f"flag={flag}"], env, exp.path.parent)
        message = proc.wait_for(r"cannot write the run's journal")
        assert str(journal) in message and "free space" in message and "LABRUN_JOURNAL_DIR" in message
        proc.wait_for(r"^logged")
        ballast.unlink()
        flag.touch()
        output = proc.finish()
        assert proc.process.returncode == 0, output
        assert "written again; nothing was lost" in output
        assert "Traceback" not in output
        assert_complete(tmp_path / "runs" / "1", n)
        # heartbeats went on: the recorder thread outlived the failure
        assert json.loads((tmp_path / "runs" / "1" / "run.json").read_text())["result"] == n


def test_points_past_the_memory_bound_are_dropped_counted_and_reported(script, tmp_path, full_disk):
    exp = script(LOGGER)
    n, flag = 400_000, tmp_path / "space-freed"
    with full_disk(tmp_path / "disk", size_mb=32, free_kb=256) as ballast:
        env = env_for(tmp_path, LABRUN_JOURNAL_DIR=str(tmp_path / "disk" / "journal"), LABRUN_JOURNAL_MEMORY_MB="4")
        proc = Watched([sys.executable, str(exp.path), "-F", str(tmp_path / "runs"), "with", f"n={n}",
                        f"flag={flag}"], env, exp.path.parent)
        proc.wait_for(r"^logged")
        ballast.unlink()
        flag.touch()
        output = proc.finish()
    assert proc.process.returncode == 0, output
    found = re.search(r"(\d+) metric points were dropped", output)
    assert found, output
    dropped = int(found.group(1))
    assert dropped > 0
    run = tmp_path / "runs" / "1"
    assert json.loads((run / "run.json").read_text())["status"] == "COMPLETED"
    steps = json.loads((run / "metrics.json").read_text())["loss"]["steps"]
    assert len(steps) == n - dropped and steps[-1] == n - 1  # the oldest waiting points went, never the newest


# -- 3. one labrun sync delivers everything, with progress ---------------------------------------------------
def blocked_store(tmp_path) -> Path:
    """A file store on a share that is not mounted yet (its mount point is a dangling link): the path is
    valid, so the run starts, and the store fails until ``unblock`` mounts it."""
    (tmp_path / "share").symlink_to(tmp_path / "mount")
    return tmp_path / "share" / "runs"


def unblock(tmp_path) -> None:
    (tmp_path / "mount").mkdir()


def test_one_sync_delivers_a_million_points_and_shows_progress_on_a_terminal(script, tmp_path):
    exp = script(LOGGER)
    store = blocked_store(tmp_path)
    proc = exp.run("-F", str(store), "with", "n=1000000", env={"LABRUN_JOURNAL_DIR": str(tmp_path / "journal")},
                   timeout=HANG_GUARD)
    assert proc.returncode == 0, proc.stderr
    (folder,) = [p for p in (tmp_path / "journal").iterdir() if p.is_dir()]
    assert (folder / "events.jsonl").stat().st_size > 8 << 20  # several of sync's 4 MiB reads
    with open(folder / "events.jsonl", "ab") as f:
        f.write(b'{"seq":999999,"type":"metr')  # a cut last line (a crash or a full disk)
    unblock(tmp_path)
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "labrun", "sync", "--journal", str(tmp_path / "journal")],
                               stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    terminal = b""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
        elif process.poll() is not None:
            break
    stdout = process.communicate(timeout=HANG_GUARD)[0]
    os.close(master)
    assert process.returncode == 0, stdout + terminal.decode()
    assert "delivered to FileStorageObserver" in stdout and "cut short" in stdout
    assert re.search(r"\d+/1,000,0\d\d points, \d+/\d+ events", terminal.decode()), terminal[-2000:]  # + system metrics
    assert "ETA" in terminal.decode()
    assert not folder.exists()
    assert_complete(store / "1", 1_000_000)


def test_sync_says_what_is_still_behind_and_exits_1(script, tmp_path):
    exp = script(LOGGER)
    store = blocked_store(tmp_path)
    assert exp.run("-F", str(store), env={"LABRUN_JOURNAL_DIR": str(tmp_path / "journal")}).returncode == 0
    behind = sync(tmp_path)
    assert behind.returncode == 1
    assert "is still behind (0% delivered)" in behind.stdout and "not complete" in behind.stdout
    assert "delivered to" not in behind.stdout


# -- 4. the background delivery finishes after the process exited ------------------------------------------
def wait_gone(pid: int, timeout: float = HANG_GUARD) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):  # reaped here only when this process is its parent
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"background delivery {pid} did not finish")


def test_the_background_delivery_finishes_after_the_run_exited(script, tmp_path):
    exp = script(LOGGER)
    store = blocked_store(tmp_path)
    proc = exp.run("-F", str(store), "with", "n=5000",
                   env={"LABRUN_JOURNAL_DIR": str(tmp_path / "journal"), "LABRUN_BACKGROUND_DELIVERY": "1"})
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"delivery goes on in the background \(pid (\d+), log: ([^)]+)\)", proc.stderr)
    assert found, proc.stderr
    pid, log = int(found.group(1)), Path(found.group(2))
    try:
        assert not (store.is_dir() and (store / "1").exists())  # nothing delivered when the process ended
        unblock(tmp_path)  # the store comes back; the background delivery retries it
        wait_gone(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert "delivered to FileStorageObserver" in log.read_text()
    assert_complete(store / "1", 5000)
    assert not [p for p in (tmp_path / "journal").iterdir() if p.is_dir()]


def test_background_delivery_can_be_turned_off(script, tmp_path):
    exp = script(LOGGER)
    proc = exp.run("-F", str(blocked_store(tmp_path)),
                   env={"LABRUN_JOURNAL_DIR": str(tmp_path / "journal"), "LABRUN_BACKGROUND_DELIVERY": "0"})
    assert proc.returncode == 0
    assert "delivery goes on in the background" not in proc.stderr and "run 'labrun sync' to deliver it" in proc.stderr


# -- 5. a second Ctrl-C during the end-of-run wait ---------------------------------------------------------
class HangingDatabase:
    """A server on 127.0.0.1 that accepts connections and never answers: a database that hangs. Closed by
    the test, which can then start a real one on the same port."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._closing.is_set():
            with contextlib.suppress(OSError):
                self.held.append(self.sock.accept()[0])

    def close(self):
        self._closing.set()
        self._thread.join(10)
        for connection in [*self.held, self.sock]:
            connection.close()


def test_a_second_ctrl_c_hands_the_rest_to_the_background_delivery(script, tmp_path):
    """The database hangs for the whole run, so the end-of-run wait cannot finish however fast the machine:
    the second Ctrl-C ends it, the background delivery takes over and finishes once a real database answers
    on that port."""
    from servers import SecantusServer

    from labrun.readback.mongo_store import MongoStoreReader

    exp = script("""
        import time
        from labrun import Experiment
        ex = Experiment("interrupted")

        @ex.main
        def main(_run):
            for i in range(200_000):
                _run.log_scalar("loss", float(i))
            print("waiting for Ctrl-C", flush=True)
            time.sleep(600)

        ex.run_commandline()
    """)
    hanging = HangingDatabase()
    base = f"mongodb://127.0.0.1:{hanging.port}"
    url = f"{base}/late?serverSelectionTimeoutMS=600000&connectTimeoutMS=600000&socketTimeoutMS=600000"
    master, slave = pty.openpty()  # a terminal, so that the end-of-run wait shows its progress line
    process = subprocess.Popen([sys.executable, str(exp.path), "-m", url, "--id", "1"], cwd=exp.path.parent,
                               stdin=slave, stdout=slave, stderr=slave,
                               env=env_for(tmp_path, LABRUN_BACKGROUND_DELIVERY="1"))
    os.close(slave)
    screen = b""
    pid = server = None

    def read_until(pattern: bytes) -> None:
        nonlocal screen
        deadline = time.monotonic() + HANG_GUARD
        while pattern not in screen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    return
            elif process.poll() is not None:
                return
        assert pattern in screen, screen.decode(errors="replace")[-3000:]

    try:
        read_until(b"waiting for Ctrl-C")
        process.send_signal(signal.SIGINT)
        read_until(b"delivering to MongoObserver: 0% of 200,0")
        process.send_signal(signal.SIGINT)
        process.wait(HANG_GUARD)
        with contextlib.suppress(AssertionError):
            read_until(b"\x00never")  # the rest of what it printed
        text = screen.decode(errors="replace")
        assert process.returncode == 130, text
        found = re.search(r"delivery goes on in the background \(pid (\d+), log: ([^)]+)\)", text)
        assert found and "(interrupted)" in text, text[-3000:]
        pid = int(found.group(1))
        assert "every store recorded it" not in text and "not every store has that yet (MongoObserver)" in text
        hanging.close()  # the database comes back
        (tmp_path / "db").mkdir()
        server = SecantusServer(str(tmp_path / "db" / "data"), port=hanging.port).start()
        wait_gone(pid)
        reader = MongoStoreReader(f"{base}/late")
        (run_id,) = reader.ids()
        assert reader.run(run_id).record["status"] == "INTERRUPTED"
        assert reader.metrics(run_id)["loss"]["steps"] == list(range(200_000))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        hanging.close()
        if server is not None:
            server.stop()


# -- 6. run ids agree across stores under 32 concurrent runs -------------------------------------------------
def test_32_concurrent_runs_agree_on_their_numbers_and_see_their_id(script, tmp_path, mongo_url):
    import pymongo

    exp = script("""
        from labrun import Experiment
        ex = Experiment("crowd")

        @ex.main
        def main(_run):
            _run.log_scalar("x", 1.0)
            return _run._id

        ex.run_commandline()
    """)
    store = tmp_path / "runs"
    env = env_for(tmp_path)
    processes = [subprocess.Popen([sys.executable, str(exp.path), "-F", str(store), "-m", mongo_url],
                                  cwd=exp.path.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(32)]
    try:
        outputs = [p.communicate(timeout=HANG_GUARD) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in processes), [o[1] for o in outputs if "Traceback" in o[1]][:1]
    client = pymongo.MongoClient(mongo_url)
    db = client.get_default_database()
    by_uid = {doc["uid"]: doc for doc in db.runs.find()}
    client.close()
    folders = [json.loads((store / name / "run.json").read_text()) | {"_id": int(name)}
               for name in os.listdir(store) if name.isdigit()]
    assert len(folders) == 32 and len(by_uid) == 32
    for run in folders:
        in_mongo = by_uid[run["uid"]]
        assert run["result"] is not None  # _run._id was set inside main
        assert run["result"] in (run["_id"], in_mongo["_id"])
        if in_mongo["_id"] != run["_id"]:  # different numbers: each store records both
            ids = {entry["observer"]: entry["id"] for entry in run["store_ids"]}
            assert ids == {"MongoObserver": in_mongo["_id"], "FileStorageObserver": run["_id"]}
            assert {e["observer"]: e["id"] for e in in_mongo["store_ids"]} == ids
