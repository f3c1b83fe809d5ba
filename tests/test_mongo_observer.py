"""The MongoDB observer against a real wire-protocol server (SecantusDB, or $LABRUN_TEST_MONGO_URL)."""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import bson
import gridfs
import pymongo
import pytest
from servers import SecantusServer, free_port

from labrun.stores.mongo_format import join_parts
from labrun.readback import open_store
from labrun.readback.mongo_store import MongoStoreReader

SCRIPT = """
import os, signal, sys, time
import helper
from labrun import Experiment

ex = Experiment("mongo_exp")

@ex.config
def cfg():
    n = 100
    mode = "ok"
    stop_file = ""

@ex.main
def main(n, mode, stop_file, _run):
    print("starting", helper.VALUE)
    for i in range(n):
        _run.log_scalar("loss", 1.0 / (i + 1))
    _run.log_scalar("val.acc", 0.5, step=3)
    _run.info["best.epoch"] = {"$where": 3, "50%": 1}
    with open("weights.bin", "wb") as f:
        f.write(b"\\x00\\x01" * 1000)
    _run.add_artifact("weights.bin", metadata={"epoch.n": 3})
    with open("data.csv", "w") as f:
        f.write("a,b\\n1,2\\n")
    _run.add_resource("data.csv")
    if mode == "fail":
        print("about to fail")
        raise ValueError("bad batch")
    if mode == "interrupt":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    if mode == "chatty":  # 50 MB of output
        line = "x" * 99 + "\\n"
        for _ in range(50):
            sys.stdout.write(line * 10_000)
        print("the end")
    if mode == "wait":  # log until the test says stop
        count, deadline = 0, time.time() + 120
        while not os.path.exists(stop_file) and time.time() < deadline:
            _run.log_scalar("tick", count)
            count += 1
            time.sleep(0.001)
        return count
    return {"score.final": 0.9}

if __name__ == "__main__":
    ex.run_commandline()
"""


@pytest.fixture
def exp(script, tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    return script(SCRIPT)


def database(url):
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    return client, client.get_default_database()


def run_ok(exp, url, *args, **kwargs):
    proc = exp.run("-m", url, *args, **kwargs)
    assert "Traceback" not in proc.stderr or "ValueError" in proc.stderr, proc.stderr
    return proc


def test_completed_run_has_the_schema_omniboard_reads(exp, mongo_url):
    proc = run_ok(exp, mongo_url, "with", "n=50")
    assert proc.returncode == 0, proc.stderr
    client, db = database(mongo_url)
    run = db.runs.find_one({"_id": 1})
    assert run["format"] == "MongoObserver-0.7.0" and run["status"] == "COMPLETED" and run["command"] == "main"
    for field in ("start_time", "heartbeat", "stop_time"):
        assert isinstance(run[field], type(run["start_time"])) and run[field].year >= 2024
    assert run["stop_time"] >= run["start_time"]
    assert run["config"]["n"] == 50 and "seed" in run["config"]
    assert run["meta"]["command"] == "main" and run["meta"]["config_updates"] == {"n": 50}
    # keys MongoDB refuses are encoded, not dropped, and decoded by the reader
    assert run["info"]["best%2Eepoch"] == {"%24where": 3, "50%25": 1}
    assert run["result"] == {"score%2Efinal": 0.9}
    # sources: [[relative path, GridFS id]], readable
    sources = dict(run["experiment"]["sources"])
    assert set(sources) == {"exp.py", "helper.py"}
    fs = gridfs.GridFS(db)
    assert fs.get(sources["helper.py"]).read() == b"VALUE = 42\n"
    # provenance Omniboard shows as JSON
    assert run["experiment"]["name"] == "mongo_exp" and "dependencies" in run["experiment"]
    assert "python" in run["experiment"]["environment"] and "gpus" in run["host"]
    assert run["host"]["hostname"] and run["uid"]
    # metrics: one document per (run, name), referenced from info.metrics
    docs = list(db.metrics.find({"run_id": 1}))
    by_name = {d["name"]: d for d in docs}
    assert by_name["loss"]["steps"] == list(range(50)) and by_name["loss"]["values"][-1] == pytest.approx(1 / 50)
    assert len(by_name["loss"]["timestamps"]) == 50 and by_name["val.acc"]["steps"] == [3]
    refs = {ref["name"]: ref["id"] for ref in run["info"]["metrics"]}
    assert refs["loss"] == str(by_name["loss"]["_id"]) and refs["val.acc"] == str(by_name["val.acc"]["_id"])
    # system metrics: their own collection, out of what Omniboard lists and plots (docs/observers/mongodb.md)
    assert not any(name.startswith("system/") for name in refs)
    assert db.system_metrics.find_one({"run_id": 1, "name": "system/cpu_percent"}) is not None
    # artifacts in GridFS
    (artifact,) = run["artifacts"]
    assert artifact["name"] == "weights.bin"
    stored = fs.get(artifact["file_id"])
    assert stored.filename == "artifact://runs/1/weights.bin" and stored.read() == b"\x00\x01" * 1000
    assert stored.metadata == {"epoch%2En": 3} and stored._file["contentType"] == "application/octet-stream"
    assert run["resources"] == [[str(exp.path.parent / "data.csv"), run["resources"][0][1]]]
    assert "starting 42" in run["captured_out"]
    # a second run uploads no source again, and gets the next id
    files_before = db["fs.files"].count_documents({"md5": {"$exists": True}})
    assert run_ok(exp, mongo_url, "with", "n=5").returncode == 0
    assert db["fs.files"].count_documents({"md5": {"$exists": True}}) == files_before
    assert db.runs.find_one({"_id": 2})["experiment"]["sources"] == run["experiment"]["sources"]
    # the reader gives the run back as it was logged
    reader = open_store(mongo_url)
    stored_run = reader.run(1)
    assert stored_run.record["info"]["best.epoch"] == {"$where": 3, "50%": 1}
    assert stored_run.record["result"] == {"score.final": 0.9}
    assert stored_run.final_metrics["loss"] == pytest.approx(1 / 50) and stored_run.config["n"] == 50
    assert open(stored_run.sources["helper.py"]).read() == "VALUE = 42\n"
    assert reader.artifact(1, "weights.bin") == b"\x00\x01" * 1000
    assert [r.id for r in reader.runs()] == [2, 1]
    assert open(stored_run.artifact_path("weights.bin"), "rb").read() == b"\x00\x01" * 1000
    reader.close()
    client.close()


def test_failed_and_interrupted_runs(exp, mongo_url):
    failed = run_ok(exp, mongo_url, "with", "mode=fail")
    assert failed.returncode == 1
    interrupted = run_ok(exp, mongo_url, "with", "mode=interrupt")
    assert interrupted.returncode != 0
    client, db = database(mongo_url)
    run = db.runs.find_one({"_id": 1})
    assert run["status"] == "FAILED" and "ValueError: bad batch" in "".join(run["fail_trace"])
    assert "about to fail" in run["captured_out"] and "ValueError: bad batch" in run["captured_out"]
    assert run["stop_time"] is not None and len(run["artifacts"]) == 1
    run = db.runs.find_one({"_id": 2})
    assert run["status"] == "INTERRUPTED" and run["stop_time"] is not None
    assert len(db.metrics.find_one({"run_id": 2, "name": "loss"})["values"]) == 100
    client.close()


def test_32_runs_starting_at_once_get_distinct_ids(mongo_url):
    from labrun.observers import MongoObserver

    barrier = threading.Barrier(32)
    ids, errors = [], []

    def start(n):
        observer = MongoObserver(mongo_url)
        record = {"uid": f"uid-{n}", "experiment": {"name": "x", "sources": []}, "command": "main", "host": {},
                  "meta": {}, "config": {"n": n}, "status": "RUNNING", "start_time": "2026-01-01T00:00:00",
                  "heartbeat": "2026-01-01T00:00:00"}
        try:
            observer._connect()
            barrier.wait(30)
            ids.append(observer.started(record, None))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            observer._close()

    threads = [threading.Thread(target=start, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and sorted(ids) == list(range(1, 33))
    client, db = database(mongo_url)
    assert sorted(d["config"]["n"] for d in db.runs.find()) == list(range(32))
    client.close()


def test_a_million_points_of_one_metric_all_arrive(script, mongo_url):
    exp = script("""
        from labrun import Experiment
        ex = Experiment("million")

        @ex.main
        def main(_run):
            for i in range(1_000_000):
                _run.log_scalar("loss", i * 0.5)

        ex.run_commandline()
    """)
    proc = exp.run("-m", mongo_url, env={"LABRUN_DELIVERY_TIMEOUT": "120"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    client, db = database(mongo_url)
    # Omniboard keys metric documents by name: exactly one, holding the whole curve, downsampled
    (summary,) = db.metrics.find({"run_id": 1, "name": "loss"})
    assert summary["downsampled"] and summary["count"] == 1_000_000
    assert len(bson.encode(summary)) < 2 * 1024 * 1024
    assert summary["steps"][0] == 0 and summary["steps"][-1] == 999_999
    assert summary["steps"] == sorted(summary["steps"]) and len(summary["steps"]) <= 4 * 4096
    assert summary["values"][-1] == 999_999 * 0.5 and max(summary["values"]) == 999_999 * 0.5
    # every point, at full resolution, in metric_points, which labrun's reader puts back together
    parts = list(db.metric_points.find({"run_id": 1, "name": "loss"}))
    assert len(parts) == 20 and all(len(bson.encode(p)) < 16 * 1024 * 1024 for p in parts)
    series = MongoStoreReader(mongo_url).metrics(1)["loss"]
    assert series["steps"] == list(range(1_000_000))
    assert series["values"][::250_000] == [0.0, 125_000.0, 250_000.0, 375_000.0]
    run = db.runs.find_one({"_id": 1})
    assert {"name": "loss", "id": str(summary["_id"])} in run["info"]["metrics"]
    client.close()


def test_50_mb_of_output_keeps_the_run_document_small(exp, mongo_url):
    proc = run_ok(exp, mongo_url, "with", "mode=chatty", "-b", "0.5", timeout=300,
                  env={"LABRUN_DELIVERY_TIMEOUT": "120"})
    assert proc.returncode == 0, proc.stderr
    client, db = database(mongo_url)
    raw = db.runs.find_raw_batches({"_id": 1}).next()
    assert len(raw) < 4 * 1024 * 1024
    run = db.runs.find_one({"_id": 1})
    assert "the end\n" in run["captured_out"][-200:] and len(run["captured_out"]) <= 1 << 20
    whole = open_store(mongo_url).output(1)
    # As in Sacred, the run's own log lines (stderr) are part of its output, beside the program's (stdout).
    head, tail = whole.splitlines()[:6], whole.splitlines()[-4:]
    assert "starting 42" in head and "INFO - mongo_exp - Running command 'main'" in head
    assert "the end" in tail and "INFO - mongo_exp - Completed after" in whole
    assert whole.count("x" * 99 + "\n") == 500_000
    client.close()


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def tick_count(url):
    client, db = database(url)
    try:
        return sum(d.get("count", 0) for d in db.metrics.find({"run_id": 1, "name": "tick"}))
    except pymongo.errors.PyMongoError:
        return 0
    finally:
        client.close()


@contextlib.contextmanager
def waiting_run(exp, url, stop_file, delivery_timeout):
    """The script in mode=wait, logging until ``stop_file`` exists; killed if the test fails first."""
    env = {**os.environ, "LABRUN_DELIVERY_TIMEOUT": str(delivery_timeout)}
    proc = subprocess.Popen([sys.executable, str(exp.path), "-m", url, "with", "mode=wait", f"stop_file={stop_file}"],
                            cwd=exp.path.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def own_server(tmp_path):
    """A server of the test's own, which it may stop and start again; stopped at the end."""
    server = SecantusServer(str(tmp_path / "db")).start()
    yield server
    server.stop()


def test_a_server_that_stops_mid_run_and_comes_back_loses_nothing(exp, tmp_path, own_server):
    url = f"{own_server.url}/restarts"
    stop_file = tmp_path / "stop"
    with waiting_run(exp, url, stop_file, 60) as proc:
        before = wait_for(lambda: tick_count(url), 60, "the first points")
        own_server.stop()
        time.sleep(3)  # the run goes on logging meanwhile
        own_server.start()
        wait_for(lambda: tick_count(url) > before + 1000, 90, "delivery after the restart")
        stop_file.write_text("")
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "failed" in err and "delivering again" in err
    assert_complete_ticks(url)


def assert_complete_ticks(url):
    """Run 1 completed, once, and every point it logged is in the database, in order."""
    client, db = database(url)
    assert db.runs.count_documents({}) == 1
    run = db.runs.find_one({"_id": 1})
    assert run["status"] == "COMPLETED"
    ticks = join_parts(db.metrics.find({"run_id": 1, "name": "tick"}))["tick"]
    assert ticks["values"] == [float(i) for i in range(run["result"])]
    client.close()


def test_a_server_absent_for_the_whole_run_gets_it_through_labrun_sync(exp, tmp_path):
    port = free_port()
    url = f"mongodb://127.0.0.1:{port}/later"
    started = time.monotonic()
    proc = run_ok(exp, url, "with", "n=200")
    assert proc.returncode == 0 and time.monotonic() - started < 30, proc.stderr
    assert "labrun sync" in proc.stderr
    journal = tmp_path / "journal"
    (kept,) = os.listdir(journal)
    delivered = json.loads((journal / kept / "delivered.json").read_text())
    assert delivered["observers"][0]["url"] == url and delivered["observers"][0]["offset"] == 0

    sync = [sys.executable, "-m", "labrun", "sync", "--journal", str(journal)]
    still_down = subprocess.run(sync, capture_output=True, text=True, timeout=60)
    assert still_down.returncode == 1 and "still behind" in still_down.stdout
    server = SecantusServer(str(tmp_path / "db"), port).start()
    try:
        synced = subprocess.run(sync, capture_output=True, text=True, timeout=120)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert "as run 1" in synced.stdout and not os.listdir(journal)
        client, db = database(url)
        run = db.runs.find_one({"_id": 1})
        assert run["status"] == "COMPLETED" and run["result"] == {"score%2Efinal": 0.9}
        assert len(db.metrics.find_one({"run_id": 1, "name": "loss"})["values"]) == 200
        assert run["artifacts"][0]["name"] == "weights.bin" and dict(run["experiment"]["sources"])["helper.py"]
        assert "starting 42" in run["captured_out"]
        client.close()
    finally:
        server.stop()


def test_sync_resumes_a_run_the_database_dropped_mid_way(exp, tmp_path, own_server):
    """The run started in the database, which then went away for good: sync finishes the same document."""
    url = f"{own_server.url}/resume"
    stop_file = tmp_path / "stop"
    with waiting_run(exp, url, stop_file, 5) as proc:
        wait_for(lambda: tick_count(url), 60, "the first points")
        own_server.stop()
        stop_file.write_text("")
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "labrun sync" in err, err
    own_server.start()
    synced = subprocess.run([sys.executable, "-m", "labrun", "sync"], capture_output=True, text=True, timeout=120)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert_complete_ticks(url)


def test_credentials_never_reach_records_logs_or_the_journal(exp, mongo_server_url, tmp_path):
    host = mongo_server_url.split("://", 1)[1]
    url = f"mongodb://alice:s3cret@{host}/creds"  # the server refuses alice: the run goes on regardless
    proc = run_ok(exp, url, "-F", str(tmp_path / "runs"))
    assert proc.returncode == 0
    assert "s3cret" not in proc.stdout + proc.stderr and "authentication failed" in proc.stderr
    assert "s3cret" not in (tmp_path / "runs" / "1" / "run.json").read_text()
    journal = tmp_path / "journal"
    for root, _dirs, files in os.walk(journal):
        for name in files:
            if name.endswith(".json") or name.endswith(".jsonl"):
                assert "s3cret" not in open(os.path.join(root, name), encoding="utf-8").read()
    sync = subprocess.run([sys.executable, "-m", "labrun", "sync"], capture_output=True, text=True, timeout=60)
    assert sync.returncode == 1 and "--url 'mongodb://alice:PASSWORD@" in sync.stdout
    assert "s3cret" not in sync.stdout + sync.stderr


def test_sacred_style_db_and_prefix(exp, mongo_server_url):
    host, port = mongo_server_url.split("://", 1)[1].split(":")
    proc = run_ok(exp, f"{host}:{port}:legacy_db.proj")
    assert proc.returncode == 0, proc.stderr
    client = pymongo.MongoClient(mongo_server_url)
    db = client.legacy_db
    assert db.proj_runs.find_one({"_id": 1})["status"] == "COMPLETED"
    assert db.proj_metrics.count_documents({"run_id": 1, "name": "loss"}) == 1
    client.drop_database("legacy_db")
    client.close()


def test_rerun_from_mongodb(exp, mongo_url):
    assert run_ok(exp, mongo_url, "with", "n=20").returncode == 0
    proc = subprocess.run([sys.executable, "-m", "labrun", "rerun", mongo_url, "1", "--check"],
                          capture_output=True, text=True, timeout=120, cwd=exp.path.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check passed: run 2 matches run 1" in proc.stdout
    client, db = database(mongo_url)
    assert db.runs.find_one({"_id": 2})["meta"]["rerun_of"]["run_id"] == 1
    client.close()


def test_with_a_file_store_too_the_database_names_the_run(exp, mongo_url, tmp_path):
    runs = tmp_path / "runs"
    (runs / "1").mkdir(parents=True)  # taken in the file store: that store falls back to its next number
    first = run_ok(exp, mongo_url, "-F", str(runs))
    assert first.returncode == 0 and "run folder" in first.stderr and "exists already" in first.stderr
    assert json.loads((runs / "2" / "run.json").read_text())["status"] == "COMPLETED"
    second = run_ok(exp, mongo_url, "-F", str(runs))
    assert second.returncode == 0, second.stderr
    assert json.loads((runs / "2" / "run.json").read_text())["uid"] != json.loads(
        (runs / "3" / "run.json").read_text())["uid"]
    client, db = database(mongo_url)
    assert db.runs.find_one({"_id": 2})["uid"] == json.loads((runs / "3" / "run.json").read_text())["uid"]
    taken = run_ok(exp, mongo_url, "--id", "2")
    assert taken.returncode == 0 and "choose another --id" in taken.stderr
    client.close()


def test_a_resumed_observer_skips_what_reached_the_database_before_the_failure(mongo_url, tmp_path):
    """labrun sync replays from the last confirmed event; a batch and a beat applied after it (their reply
    lost) are not stored twice."""
    from array import array

    from labrun.observers import MongoObserver

    record = {"uid": "u-resume", "experiment": {"name": "x", "sources": []}, "command": "main", "host": {},
              "meta": {}, "config": {}, "status": "RUNNING", "start_time": "2026-01-01T00:00:00",
              "heartbeat": "2026-01-01T00:00:00"}

    def batch(first, count):
        return {"loss": {"steps": array("d", range(first, first + count)),
                         "values": array("d", [float(i) for i in range(first, first + count)]),
                         "timestamps": array("d", [1e9 + i for i in range(first, first + count)])}}

    first = MongoObserver(mongo_url)
    run_id = first.started(record, None)
    first.metrics(batch(0, 10))
    first.heartbeat({}, "line 1\n", None, "2026-01-01T00:00:10")
    first.metrics(batch(10, 10))  # applied, but the process died before confirming it
    first.heartbeat({}, "line 2\n", None, "2026-01-01T00:00:20")
    first._close()

    later = MongoObserver(mongo_url)
    later.resumed(record, run_id)
    later.metrics(batch(10, 5))  # the replay: all stored already
    later.metrics(batch(15, 10))  # partly stored (15-19), partly new (20-24)
    later.heartbeat({}, "line 2\n", None, "2026-01-01T00:00:20")  # replayed: its output is stored already
    later.ended("COMPLETED", "2026-01-01T00:00:30", None, None, {}, "line 3\n")
    client, db = database(mongo_url)
    loss = join_parts(db.metrics.find({"run_id": run_id, "name": "loss"}))["loss"]
    assert loss["steps"] == list(range(25))
    assert open_store(mongo_url).output(run_id) == "line 1\nline 2\nline 3\n"
    client.close()


def test_sync_delivers_a_killed_run_to_every_store_once(exp, tmp_path):
    """SIGKILL while the database is down: the journal, which names the observers, gets the run through
    `labrun sync`; the file store and TensorBoard, which had it already, hold every point exactly once."""
    import signal

    from labrun.stores.metrics_file import read_metrics
    from test_tensorboard_mlflow import accumulator

    port = free_port()
    url, runs, logs = f"mongodb://127.0.0.1:{port}/killed", tmp_path / "runs", tmp_path / "tb"
    stop_file = tmp_path / "never"
    proc = subprocess.Popen([sys.executable, str(exp.path), "-m", url, "-F", str(runs), "--tensorboard", str(logs),
                             "with", "mode=wait", f"stop_file={stop_file}"], cwd=exp.path.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sync = [sys.executable, "-m", "labrun", "sync"]
    try:
        wait_for(lambda: (runs / "1" / "metrics.jsonl").exists() and read_metrics(str(runs / "1")).get("tick"), 60,
                 "ticks in the file store")
        live = subprocess.run(sync, capture_output=True, text=True, timeout=60)
        assert live.returncode == 1 and "still running" in live.stdout
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    server = SecantusServer(str(tmp_path / "db"), port).start()
    try:
        synced = subprocess.run(sync, capture_output=True, text=True, timeout=120)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert "was killed" in synced.stdout and not os.listdir(tmp_path / "journal")
        ticks = read_metrics(str(runs / "1"))["tick"]["values"]
        assert list(ticks) == [float(i) for i in range(len(ticks))] and len(ticks) > 0
        client, db = database(url)
        run = db.runs.find_one({"_id": 1})
        assert run["status"] == "RUNNING" and run["uid"] == json.loads((runs / "1" / "run.json").read_text())["uid"]
        assert join_parts(db.metrics.find({"run_id": 1, "name": "tick"}))["tick"]["values"] == list(ticks)
        assert [p.value for p in accumulator(logs / "mongo_exp_0001").Scalars("tick")] == list(ticks)
        client.close()
    finally:
        server.stop()
