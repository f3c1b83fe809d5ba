"""Runs recorded in the file store: statuses, exit codes, output, metrics, artifacts, concurrency, crashes."""

import datetime as dt
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from array import array

import pytest

from labrun import Experiment
from labrun.stores.artifact_names import ArtifactNameError
from labrun.observer import RunObserver
from labrun.observers.file_storage import FileStorageObserver
from labrun._util.timestamps import iso

EXP = '''
import os, sys, time
from labrun import Experiment
from labrun.run import TimeoutInterrupt

ex = Experiment("store")


@ex.config
def cfg():
    n = 5
    mode = "ok"


@ex.automain
def main(n, mode, _run):
    for i in range(n):
        _run.log_scalar("loss", 1.0 / (i + 1))
        _run.log_scalar("acc", i * 0.1, step=i * 10)
    _run.info["done"] = n
    print("before the ending")
    if mode == "fail":
        raise ValueError("the tail must survive")
    if mode == "exit0":
        sys.exit(0)
    if mode == "timeout":
        raise TimeoutInterrupt("out of time")
    if mode == "progress":
        for i in range(500):
            print(f"\\rstep {i:3d}/500", end="", flush=True)
        print()
        os.system("echo from a subprocess")
    if mode == "wait":
        print("READY", flush=True)
        while True:
            _run.log_scalar("tick", time.time())
            time.sleep(0.01)
    return n * 2
'''


@pytest.fixture
def exp(script):
    return script(EXP)


def load(exp, run_id=1, name="run.json"):
    path = exp.path.parent / "runs" / str(run_id) / name
    return json.loads(path.read_text())


def test_completed_run_layout(exp):
    out = exp.run("-F", "runs")
    assert out.returncode == 0, out.stderr
    run = load(exp)
    assert run["status"] == "COMPLETED" and run["result"] == 10
    assert run["experiment"]["name"] == "store" and run["command"] == "main"
    assert len(run["uid"]) == 32 and run["start_time"] <= run["stop_time"]
    assert load(exp, name="config.json")["n"] == 5
    assert load(exp, name="info.json") == {"done": 5}
    metrics = load(exp, name="metrics.json")
    assert metrics["loss"]["steps"] == [0, 1, 2, 3, 4] and metrics["loss"]["values"][1] == 0.5
    assert metrics["acc"]["steps"] == [0, 10, 20, 30, 40] and len(metrics["acc"]["timestamps"]) == 5
    assert "before the ending" in (exp.path.parent / "runs/1/cout.txt").read_text()
    assert exp.run("-o", "file://runs").returncode == 0
    assert load(exp, 2)["status"] == "COMPLETED"


def test_failed_run_keeps_traceback_and_output_tail(exp):
    out = exp.run("-F", "runs", "with", "mode=fail")
    assert out.returncode == 1
    run = load(exp)
    assert run["status"] == "FAILED"
    assert "ValueError: the tail must survive" in "".join(run["fail_trace"])
    cout = (exp.path.parent / "runs/1/cout.txt").read_text()
    assert "before the ending" in cout and "ValueError: the tail must survive" in cout
    assert load(exp, name="metrics.json")["loss"]["steps"] == [0, 1, 2, 3, 4]


def test_sys_exit_zero_is_completed(exp):
    out = exp.run("-F", "runs", "with", "mode=exit0")
    assert out.returncode == 0 and load(exp)["status"] == "COMPLETED"


def test_timeout_status(exp):
    out = exp.run("-F", "runs", "with", "mode=timeout")
    assert out.returncode == 1 and load(exp)["status"] == "TIMEOUT"


def test_queued_run_is_recorded_without_running(exp):
    out = exp.run("-F", "runs", "-q")
    assert out.returncode == 0
    run = load(exp)
    assert run["status"] == "QUEUED" and not (exp.path.parent / "runs/1/metrics.json").exists()


def test_progress_bar_is_collapsed_and_subprocess_output_caught(exp):
    out = exp.run("-F", "runs", "with", "mode=progress")
    assert out.returncode == 0, out.stderr
    cout = (exp.path.parent / "runs/1/cout.txt").read_text()
    assert "step 499/500\n" in cout and "step 498" not in cout and "\r" not in cout
    assert "from a subprocess" in cout
    assert out.stdout.count("step ") == 500  # the terminal still got every redraw


def test_sys_capture_mode(exp):
    out = exp.run("-F", "runs", "-C", "sys")
    assert out.returncode == 0
    assert "before the ending" in (exp.path.parent / "runs/1/cout.txt").read_text()


def test_beats_off_still_records_everything(exp):
    out = exp.run("-F", "runs", "-b", "0", "with", "n=1000")
    assert out.returncode == 0
    assert len(load(exp, name="metrics.json")["loss"]["values"]) == 1000
    assert load(exp, name="info.json") == {"done": 1000}


def start_waiting(exp, *args):
    proc = subprocess.Popen([sys.executable, str(exp.path), "-F", "runs", "with", "mode=wait", *args],
                            cwd=exp.path.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    deadline = time.time() + 30
    while time.time() < deadline and not (exp.path.parent / "runs/1/run.json").exists():
        time.sleep(0.05)
    time.sleep(1.5)
    return proc


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_are_recorded_as_interrupted(exp, sig, code):
    proc = start_waiting(exp)
    proc.send_signal(sig)
    try:
        proc.wait(30)
    finally:
        proc.kill()
    assert proc.returncode == code
    run = load(exp)
    assert run["status"] == "INTERRUPTED"
    assert len(load(exp, name="metrics.json")["tick"]["values"]) > 10


def test_sigkill_leaves_parseable_record_and_metrics_up_to_the_last_second(exp):
    proc = start_waiting(exp)
    time.sleep(1.0)
    killed_at = time.time()
    proc.kill()
    proc.wait(10)
    run = load(exp)  # parses: run.json is only ever replaced whole
    assert run["status"] == "RUNNING"
    from labrun.stores.metrics_file import read_metrics

    ticks = read_metrics(str(exp.path.parent / "runs" / "1"))["tick"]["values"]
    assert ticks and killed_at - max(ticks) < 1.5, f"last point {killed_at - max(ticks):.2f} s before the kill"


def test_concurrent_runs_get_distinct_ids(exp):
    procs = [subprocess.Popen([sys.executable, str(exp.path), "-F", "runs", "-l", "ERROR", "with", f"n={i + 1}"],
                              cwd=exp.path.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(32)]
    for proc in procs:
        proc.wait(120)
        assert proc.returncode == 0, proc.stderr.read()
    runs = exp.path.parent / "runs"
    ids = sorted(int(p.name) for p in runs.iterdir() if p.name.isdigit())
    assert ids == list(range(1, 33))
    counts = sorted(len(json.loads((runs / str(i) / "metrics.json").read_text())["loss"]["values"]) for i in ids)
    assert counts == list(range(1, 33))  # every run's every point, each in its own folder


class Raising(RunObserver):
    def started(self, record, _id):
        raise RuntimeError("database down")

    metrics = heartbeat = ended = started


class Sleeping(RunObserver):
    def __init__(self):
        self.calls = 0

    def started(self, record, _id):
        time.sleep(5)
        return _id

    def metrics(self, metrics):
        time.sleep(5)


def test_failing_and_slow_observers_cost_the_loop_nothing(tmp_path, monkeypatch, caplog):
    from labrun.observers.file_storage import FileStorageObserver

    monkeypatch.setenv("LABRUN_DELIVERY_TIMEOUT", "2")
    ex = Experiment("iso")
    ex.observers += [Raising(), Sleeping(), FileStorageObserver(str(tmp_path / "runs"))]

    @ex.main
    def main(_run):
        start = time.perf_counter()
        for i in range(100_000):
            _run.log_scalar("x", i)
        return time.perf_counter() - start

    run = ex.run()
    assert run.result < 2.0  # a blocking design would wait 5 s per call of the sleeping observer
    assert run._id == 1  # the file store named the run (highest priority that answered)
    metrics = json.loads((tmp_path / "runs/1/metrics.json").read_text())
    assert len(metrics["x"]["values"]) == 100_000
    assert json.loads((tmp_path / "runs/1/run.json").read_text())["status"] == "COMPLETED"
    assert caplog.text.count("observer Raising failed") == 1  # logged once, not per retry
    assert "did not confirm everything" in caplog.text
    journal = os.environ["LABRUN_JOURNAL_DIR"]
    left = os.listdir(journal)
    assert len(left) == 1 and os.path.exists(os.path.join(journal, left[0], "delivered.json"))


def test_journal_is_removed_once_every_observer_confirmed(tmp_path):
    from labrun.observers.file_storage import FileStorageObserver

    ex = Experiment("clean")
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))

    @ex.main
    def main(_run):
        _run.log_scalar("a", 1)

    ex.run()
    assert os.listdir(os.environ["LABRUN_JOURNAL_DIR"]) == []


def test_artifacts_names_copies_and_duplicates(tmp_path):
    from labrun.observers.file_storage import FileStorageObserver

    ex = Experiment("art")
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))
    src = tmp_path / "model.txt"

    @ex.main
    def main(_run):
        src.write_text("first")
        _run.add_artifact(str(src))
        src.write_text("second")
        stored = _run.add_artifact(str(src))
        src.unlink()  # the journal has its own copy
        for bad in ["../escape.txt", "/etc/passwd", "run.json", "a/../../b"]:
            with pytest.raises(ArtifactNameError):
                _run.add_artifact(__file__, name=bad)
        _run.add_artifact(__file__, name="plots/code.py", metadata={"kind": "code"})
        return stored

    run = ex.run()
    assert run.result == "model-2.txt"
    folder = tmp_path / "runs" / "1"
    assert (folder / "model.txt").read_text() == "first" and (folder / "model-2.txt").read_text() == "second"
    assert (folder / "plots" / "code.py").exists()
    assert json.loads((folder / "run.json").read_text())["artifacts"] == ["model.txt", "model-2.txt", "plots/code.py"]


def test_resources_are_deduplicated_by_content(tmp_path):
    from labrun.observers.file_storage import FileStorageObserver

    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    ex = Experiment("res")
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))

    @ex.main
    def main():
        with ex.open_resource(str(data)) as f:
            return f.read()

    ex.run()
    ex.run()
    stored = os.listdir(tmp_path / "runs" / "_resources")
    assert len(stored) == 1 and stored[0].startswith("data_") and stored[0].endswith(".csv")
    run = json.loads((tmp_path / "runs/2/run.json").read_text())
    assert run["resources"] == [[str(data), os.path.join("_resources", stored[0])]]


def test_ex_shortcuts_and_numpy_nan_values(tmp_path):
    import numpy as np

    from labrun.observers.file_storage import FileStorageObserver

    ex = Experiment("short")
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))

    @ex.main
    def main():
        ex.log_scalar("v", np.float32(1.5))
        ex.log_scalar("v", float("nan"))
        ex.log_scalar("v", float("inf"))
        ex.info["k"] = 1

    ex.run()
    values = json.loads((tmp_path / "runs/1/metrics.json").read_text())["v"]["values"]
    assert values[0] == 1.5 and values[1] != values[1] and values[2] == float("inf")
    with pytest.raises(RuntimeError, match="only while a run is going on"):
        ex.log_scalar("v", 1)


def test_names_info_and_output_that_look_like_a_metrics_line_reach_the_store_intact(tmp_path):
    """The journal and metrics.jsonl read metric batches without parsing their points: text that imitates
    that layout in a metric's name, in info or in the output must not fool them."""
    ex = Experiment("lookalike")
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))
    lookalike = 'x","points":"AAAA'

    @ex.main
    def main(_run):
        _run.info["note"] = {"first": 1, "points": lookalike}
        for i in range(3):
            _run.log_scalar(lookalike, i)
        _run.log_scalar('a quote " and a \\ backslash', 1.0)
        print(',"points":"' + lookalike + '"}')

    ex.run(options={"--loglevel": "ERROR", "--capture": "sys"})
    run_dir = tmp_path / "runs" / "1"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics[lookalike]["values"] == [0, 1, 2] and metrics[lookalike]["steps"] == [0, 1, 2]
    assert metrics['a quote " and a \\ backslash']["values"] == [1.0]
    assert json.loads((run_dir / "info.json").read_text()) == {"note": {"first": 1, "points": lookalike}}
    assert (run_dir / "cout.txt").read_text() == ',"points":"' + lookalike + '"}\n'


def test_no_observer_says_how_to_add_one(exp):
    out = exp.run()
    assert "WARNING - store - No observers have been added to this run\n" in out.stderr  # Sacred's line
    assert "add an observer with -F DIR" in out.stderr
    assert "no observer" not in exp.run("-u").stderr


def test_heartbeats_reach_the_store_during_the_run_and_the_id_is_known_at_start(tmp_path):
    from labrun.observers.file_storage import FileStorageObserver

    ex = Experiment("beat")
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))
    folder = tmp_path / "runs" / "1"

    @ex.main
    def main(_run):
        assert _run._id == 1  # named by the file store before main started
        _run.info["phase"] = "warm-up"
        _run.result = "partial"
        print("halfway there")
        deadline = time.time() + 10
        while time.time() < deadline:
            info_file = folder / "info.json"  # written by the first beat that carries info
            info = json.loads(info_file.read_text()) if info_file.exists() else {}
            if info.get("phase") == "warm-up" and "halfway there" in (folder / "cout.txt").read_text():
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no heartbeat reached the store within 10 s")
        return json.loads((folder / "run.json").read_text())["result"]

    run = ex.run(options={"--beat-interval": 0.2})  # pytest replaces sys.stdout: the default falls back to sys
    assert run.status == "COMPLETED" and run.result == "partial"


def test_leftover_journals_are_announced(tmp_path, caplog):
    from labrun.observers.file_storage import FileStorageObserver

    os.makedirs(os.path.join(os.environ["LABRUN_JOURNAL_DIR"], "0" * 32))
    ex = Experiment("left")
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))

    @ex.main
    def main():
        return 1

    ex.run()
    assert "1 journal of earlier runs was not fully delivered" in caplog.text


def test_a_failing_first_observer_hands_the_naming_on_at_once(tmp_path, monkeypatch):
    from labrun.observers.file_storage import FileStorageObserver

    monkeypatch.setenv("LABRUN_DELIVERY_TIMEOUT", "1")  # the failing observer never confirms

    class DownDatabase(Raising):
        priority = 100  # asked first, like a MongoDB observer whose server is gone

    ex = Experiment("handoff")
    ex.observers += [DownDatabase(), FileStorageObserver(str(tmp_path / "runs"))]
    clock = {}

    @ex.main
    def main(_run):
        return _run._id, time.perf_counter() - clock["before"]

    clock["before"] = time.perf_counter()
    run = ex.run(options={"--loglevel": "ERROR"})
    run_id, waited = run.result
    assert run_id == 1  # the file store, next in priority, named the run
    assert waited < 2.0  # main started without waiting out the 5 s id timeout


def test_an_unusable_journal_folder_fails_the_run_cleanly(tmp_path, monkeypatch):
    from labrun.observers.file_storage import FileStorageObserver

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("LABRUN_JOURNAL_DIR", str(blocker))
    ex = Experiment("nojournal")
    ex.observers.append(FileStorageObserver(str(tmp_path / "runs")))

    @ex.capture
    def probe(_run):
        return _run

    @ex.main
    def main():
        return 1

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(OSError):
        ex.run()
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored
    with pytest.raises(TypeError, match="_run"):
        probe()  # a plain function again: no run is left bound to it


def test_metrics_json_joins_batches_in_sacreds_format(tmp_path):
    """Batches of several metrics, a second boundary, a clock stepped back, NaN and inf all come out right."""
    store = FileStorageObserver(str(tmp_path))
    store.started({"uid": "u1", "experiment": {"name": "t", "sources": []}, "config": {}, "artifacts": [],
                   "resources": []}, None)
    base = 1_700_000_000.25
    # Out of order twice (the clock stepped), crossing second boundaries.
    stamps = [base, base + 1.25, base + 0.5, base + 0.6, base + 0.9999995, base + 1.1, base - 3.0]
    store.metrics({"loss": {"steps": array("d", range(7)),
                            "values": array("d", [0.5, math.nan, 2.0, -1e300, 3, 4, 5]),
                            "timestamps": array("d", stamps)}})
    store.metrics({"acc": {"steps": array("d", [10]), "values": array("d", [math.inf]),
                           "timestamps": array("d", [base])}})
    store.metrics({"loss": {"steps": array("d", [7]), "values": array("d", [0.25]), "timestamps": array("d", [base])}})
    # Batches longer than a render slice, interleaved with another metric's: values that need all 17 digits.
    rng = random.Random(3)
    big = [rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30) for _ in range(10_001)] + [-math.inf]
    for part in (slice(0, 9_000), slice(9_000, None)):
        values = big[part]
        store.metrics({"big": {"steps": array("d", range(part.start, part.start + len(values))),
                               "values": array("d", values), "timestamps": array("d", [base + 2] * len(values))}})
        store.metrics({"acc": {"steps": array("d", [11]), "values": array("d", [1.0]),
                               "timestamps": array("d", [base])}})
    store.ended("COMPLETED", iso(base), None, None, {}, "")

    metrics = json.loads((tmp_path / "1" / "metrics.json").read_text())
    assert list(metrics) == ["loss", "acc", "big"]
    assert metrics["loss"]["steps"] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert metrics["loss"]["values"][2:] == [2.0, -1e300, 3, 4, 5, 0.25] and math.isnan(metrics["loss"]["values"][1])
    assert metrics["acc"] == {"steps": [10, 11, 11], "values": [math.inf, 1.0, 1.0], "timestamps": [iso(base)] * 3}
    assert metrics["big"]["values"] == big and metrics["big"]["steps"] == list(range(len(big)))
    assert metrics["big"]["timestamps"] == [iso(base + 2)] * len(big)
    parsed = [dt.datetime.fromisoformat(t) for t in metrics["loss"]["timestamps"]]
    expected = [dt.datetime.fromisoformat(iso(s)) for s in stamps + [base]]
    assert all(abs((p - e).total_seconds()) <= 1e-6 for p, e in zip(parsed, expected)), parsed
    assert not (tmp_path / "1" / ".metrics.json.parts").exists()


def test_a_new_observer_object_resumes_a_run_another_process_started(tmp_path):
    """What `labrun sync` does when the file store fell behind: the run goes on in the same folder."""
    record = {"uid": "u2", "experiment": {"name": "t", "sources": []}, "config": {"n": 1}, "artifacts": [],
              "resources": []}
    first = FileStorageObserver(str(tmp_path))
    assert first.started(record, None) == 1
    first.heartbeat({"epoch": 1}, "before\n", None, iso(1_700_000_000))
    first.metrics({"loss": {"steps": array("d", [0]), "values": array("d", [1.0]), "timestamps": array("d", [1.0])}})

    later = FileStorageObserver(str(tmp_path))
    later.resumed(record, 1)
    later.metrics({"loss": {"steps": array("d", [1]), "values": array("d", [0.5]), "timestamps": array("d", [2.0])}})
    later.ended("COMPLETED", iso(1_700_000_001), 7, None, {"epoch": 2}, "after\n")
    assert sorted(os.listdir(tmp_path)) == ["1"]
    run = json.loads((tmp_path / "1" / "run.json").read_text())
    assert run["status"] == "COMPLETED" and run["result"] == 7 and run["uid"] == "u2"
    assert json.loads((tmp_path / "1" / "metrics.json").read_text())["loss"]["values"] == [1.0, 0.5]
    assert (tmp_path / "1" / "cout.txt").read_text() == "before\nafter\n"
    assert json.loads((tmp_path / "1" / "info.json").read_text()) == {"epoch": 2}


def test_metrics_json_pieces_are_copied_where_the_kernel_cannot(tmp_path):
    """Where copy_file_range is missing or refused (macOS, some file systems; here an O_APPEND target, which
    Linux refuses), the pieces of metrics.json go through Python instead, just as complete."""
    from labrun.observers.file_metrics import _copy_range

    source = tmp_path / "parts"
    source.write_bytes(bytes(range(256)) * 10_000)
    with open(source, "rb") as src, open(tmp_path / "out", "ab") as out:
        out.write(b"head")  # still in out's buffer: it must land first
        _copy_range(src, out, 1000, 2_000_000)
    assert (tmp_path / "out").read_bytes() == b"head" + (bytes(range(256)) * 10_000)[1000:2_001_000]
