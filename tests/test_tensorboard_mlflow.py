"""TensorBoard and MLflow observers, read back through each tool's own reader, client or server."""

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from gitrepo import make_repo
from servers import free_port, server_process

SCRIPT = """
import os, signal, time
from labrun import Experiment

ex = Experiment("both")

@ex.config
def cfg():
    n = 500
    mode = "ok"
    stop_file = ""
    opt = {"name": "adam", "lr": 0.01}
    note = "x" * 7000

@ex.main
def main(n, mode, stop_file, _run):
    print("training starts")
    for i in range(n):
        _run.log_scalar("loss", 1.0 / (i + 1))
        _run.log_scalar("val.acc", i / n)
    _run.info["best"] = {"epoch": 3}
    with open("model.bin", "wb") as f:
        f.write(b"weights")
    _run.add_artifact("model.bin", name="checkpoints/model.bin")
    if mode == "fail":
        raise ValueError("diverged")
    if mode == "interrupt":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    if mode == "wait":
        count, deadline = 0, time.time() + 120
        while not os.path.exists(stop_file) and time.time() < deadline:
            _run.log_scalar("tick", count)
            count += 1
            time.sleep(0.002)
        return count
    return 0.5

if __name__ == "__main__":
    ex.run_commandline()
"""


@pytest.fixture
def exp(script, tmp_path):
    """The experiment, committed in a git repository (so the git tags and texts have something to show)."""
    repo = make_repo(tmp_path / "repo", {"exp.py": __import__("textwrap").dedent(SCRIPT)})
    from conftest import Script

    return Script(repo / "exp.py")


def metrics_json(store, run_id=1):
    return json.loads((store / str(run_id) / "metrics.json").read_text())


# -- TensorBoard ------------------------------------------------------------------------------------------------
def accumulator(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def texts(acc, tag):
    from tensorboard.util import tensor_util

    return [tensor_util.make_ndarray(e.tensor_proto).item().decode() for e in acc.Tensors(tag)]


def hparams(acc):
    from tensorboard.plugins.hparams import plugin_data_pb2

    return {tag: plugin_data_pb2.HParamsPluginData.FromString(content)
            for tag, content in acc.PluginTagToContent("hparams").items()}


def test_tensorboard_run_holds_every_point_the_hparams_session_and_texts(exp, tmp_path):
    logs, store = tmp_path / "tb", tmp_path / "runs"
    proc = exp.run("-F", str(store), "--tensorboard", str(logs), "with", "n=500")
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(logs) == ["both_0001"]  # named after the experiment and the file store's id
    acc = accumulator(logs / "both_0001")
    stored = metrics_json(store)
    assert "val/acc" in acc.Tags()["scalars"] and "val.acc" not in acc.Tags()["scalars"]  # grouped under "val"
    for name in ("loss", "val.acc"):
        points = acc.Scalars(name.replace(".", "/"))
        assert [p.step for p in points] == stored[name]["steps"]
        assert [p.value for p in points] == pytest.approx(stored[name]["values"], rel=1e-6)  # float32
    first = acc.Scalars("loss")[0].wall_time
    from labrun._util.timestamps import posix

    assert abs(first - posix(stored["loss"]["timestamps"][0])) < 1e-3
    sessions = hparams(acc)
    start = sessions["_hparams_/session_start_info"].session_start_info
    assert start.hparams["opt.name"].string_value == "adam" and start.hparams["opt.lr"].number_value == 0.01
    assert start.hparams["n"].number_value == 500
    from tensorboard.plugins.hparams import api_pb2

    assert sessions["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS
    assert texts(acc, "run/status") == ["RUNNING", "COMPLETED"]
    commit = json.loads((store / "1" / "run.json").read_text())["experiment"]["repositories"][0]["commit"]
    assert commit in texts(acc, "run/git")[0]
    assert '"epoch": 3' in texts(acc, "run/info")[-1]
    assert (logs / "both_0001" / "artifacts" / "checkpoints" / "model.bin").read_bytes() == b"weights"

    failed = exp.run("--tensorboard", str(logs), "with", "mode=fail", "n=3")
    assert failed.returncode == 1
    acc = accumulator(logs / "both_0002")  # numbered in LOGDIR when no other store names the run
    assert hparams(acc)["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_FAILURE
    assert texts(acc, "run/status")[-1] == "FAILED" and "ValueError: diverged" in texts(acc, "run/fail_trace")[0]


def test_tensorboard_server_serves_the_scalars(exp, tmp_path):
    logs = tmp_path / "tb"
    assert exp.run("--tensorboard", str(logs), "with", "n=200").returncode == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", "127.0.0.1", "--port",
            str(port), "--load_fast", "false", "--reload_interval", "1"]
    with server_process(args, f"{base}/data/runs"):
        query = urllib.parse.urlencode({"run": "both_0001", "tag": "loss"})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/data/plugin/scalars/scalars?{query}", timeout=5) as response:
                    points = json.loads(response.read())
                if len(points) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "TensorBoard never served the 200 points"
            time.sleep(0.5)
        assert [p[1] for p in points] == list(range(200))
        assert points[-1][2] == pytest.approx(1 / 200)
        # the HPARAMS tab: one session per run, its config and the final value of each metric
        request = {"experimentName": "", "startIndex": 0, "sliceSize": 10, "colParams": [],
                   "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]}
        post = urllib.request.Request(f"{base}/data/plugin/hparams/session_groups", json.dumps(request).encode(),
                                      {"Content-Type": "application/json"})
        with urllib.request.urlopen(post, timeout=10) as response:
            (group,) = json.loads(response.read())["sessionGroups"]
        assert group["name"] == "both_0001" and group["hparams"]["n"] == 200 and group["hparams"]["opt.name"] == "adam"
        final = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert final["loss"] == pytest.approx(1 / 200) and final["val/acc"] == pytest.approx(199 / 200)
        assert group["sessions"][0]["status"] == "STATUS_SUCCESS"


# -- MLflow -----------------------------------------------------------------------------------------------------
def mlflow_run(uri, experiment="both"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id],
                              order_by=["attributes.start_time ASC"])
    return client, runs


def artifact_text(client, run_id, path, folder):
    return open(client.download_artifacts(run_id, path, str(folder)), encoding="utf-8").read()


def test_mlflow_sqlite_run_has_params_tags_histories_artifacts_and_status(exp, tmp_path):
    store, db = tmp_path / "runs", tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    proc = exp.run("-F", str(store), "--mlflow", uri, "with", "n=2500", "opt.lr=0.5")
    assert proc.returncode == 0, proc.stderr
    assert exp.run("-F", str(store), "-o", f"mlflow+{uri}", "with", "mode=fail", "n=3").returncode == 1
    assert exp.run("-F", str(store), "-o", f"mlflow+{uri}", "with", "mode=interrupt", "n=3").returncode != 0
    client, runs = mlflow_run(uri)
    assert [r.info.status for r in runs] == ["FINISHED", "FAILED", "KILLED"]
    run = runs[0]
    assert run.info.run_name == "both #1"
    params = run.data.params
    assert params["opt.lr"] == "0.5" and params["opt.name"] == "adam" and params["n"] == "2500"
    assert len(params["note"]) == 6000  # cut at MLflow's limit; the whole config is an artifact
    tags = run.data.tags
    record = json.loads((store / "1" / "run.json").read_text())
    repo = record["experiment"]["repositories"][0]
    assert tags["mlflow.source.git.commit"] == repo["commit"] and tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.name"].endswith("exp.py") and tags["mlflow.source.type"] == "LOCAL"
    assert tags["labrun.run_id"] == "1" and tags["labrun.uid"] == record["uid"] and tags["labrun.command"] == "main"
    assert tags["mlflow.user"] and tags["labrun.host"] == record["host"]["hostname"]
    assert tags["labrun.git.dirty"] == "false"
    stored = metrics_json(store)
    for name in ("loss", "val.acc"):
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in history] == stored[name]["steps"]
        assert [m.value for m in history] == stored[name]["values"]
    paths = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "cout.txt", "info.json", "checkpoints", "source"} <= paths
    assert json.loads(artifact_text(client, run.info.run_id, "config.json", tmp_path))["note"] == "x" * 7000
    assert "training starts" in artifact_text(client, run.info.run_id, "cout.txt", tmp_path)
    assert artifact_text(client, run.info.run_id, "checkpoints/model.bin", tmp_path) == "weights"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "source")] == ["source/exp.py"]
    assert "ValueError: diverged" in runs[1].data.tags["labrun.fail_trace"]


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` on 127.0.0.1 with a sqlite backend; ``restart()`` stops and starts it again."""
    port = free_port()
    db = tmp_path / "server.db"
    args = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", str(tmp_path / "artifacts")]

    class Server:
        url = f"http://127.0.0.1:{port}"
        sqlite = f"sqlite:///{db}"
        stack = contextlib.ExitStack()

        def start(self):
            self.process = self.stack.enter_context(server_process(args, f"{self.url}/health", timeout=120))

        def stop(self):
            self.stack.close()

    server = Server()
    server.start()
    yield server
    server.stop()


def test_mlflow_server_over_http_and_a_restart_mid_run_loses_nothing(exp, tmp_path, mlflow_server):
    assert exp.run("--mlflow", mlflow_server.url, "with", "n=300").returncode == 0
    client, runs = mlflow_run(mlflow_server.url)
    assert runs[0].info.status == "FINISHED"
    assert len(client.get_metric_history(runs[0].info.run_id, "loss")) == 300
    assert client.list_artifacts(runs[0].info.run_id, "checkpoints")[0].path == "checkpoints/model.bin"

    stop_file = tmp_path / "stop"
    env = {**os.environ, "LABRUN_DELIVERY_TIMEOUT": "60"}
    proc = subprocess.Popen([sys.executable, str(exp.path), "-o", f"mlflow+{mlflow_server.url}", "with", "mode=wait",
                             "n=10", f"stop_file={stop_file}"], cwd=exp.path.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def ticks():
            _, found = mlflow_run(mlflow_server.sqlite)
            return len(found) == 2 and len(client.get_metric_history(found[1].info.run_id, "tick"))

        deadline = time.monotonic() + 60
        while not ticks():
            assert time.monotonic() < deadline, "no tick reached the server"
            time.sleep(0.3)
        mlflow_server.stop()
        time.sleep(3)  # the loop goes on meanwhile
        mlflow_server.start()
        before = ticks()
        deadline = time.monotonic() + 90
        while ticks() <= before:
            assert time.monotonic() < deadline, "delivery did not resume after the restart"
            time.sleep(0.5)
        stop_file.write_text("")
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "failed" in err and "delivering again" in err
    _, runs = mlflow_run(mlflow_server.sqlite)
    run = runs[1]
    assert run.info.status == "FINISHED"
    logged = int(float(run.data.tags["labrun.result"]))
    history = client.get_metric_history(run.info.run_id, "tick")
    assert sorted(m.value for m in history) == [float(i) for i in range(logged)]


def test_both_observers_with_the_file_store_agree(exp, tmp_path):
    store, logs, uri = tmp_path / "runs", tmp_path / "tb", f"sqlite:///{tmp_path / 'm.db'}"
    proc = exp.run("-F", str(store), "--tensorboard", str(logs), "--mlflow", uri, "with", "n=1200")
    assert proc.returncode == 0, proc.stderr
    stored = metrics_json(store)
    acc = accumulator(logs / "both_0001")
    client, (run,) = mlflow_run(uri)
    for name in ("loss", "val.acc"):
        tb = acc.Scalars(name.replace(".", "/"))  # TensorBoard's tag; MLflow keeps the name as logged
        ml = client.get_metric_history(run.info.run_id, name)
        assert len(tb) == len(ml) == len(stored[name]["values"]) == 1200
        assert [p.step for p in tb] == [m.step for m in ml] == stored[name]["steps"]
        assert tb[-1].value == pytest.approx(ml[-1].value, rel=1e-6) and ml[-1].value == stored[name]["values"][-1]
        assert abs(ml[-1].timestamp / 1000 - tb[-1].wall_time) < 0.002
    assert run.data.tags["labrun.run_id"] == "1" and run.data.tags["labrun.status"] == "COMPLETED"


def test_both_observers_resume_a_run_another_process_started(tmp_path):
    """What `labrun sync` does for them: a new observer object finds the run by uid and goes on with the same
    TensorBoard folder and event file, and the same MLflow run (found by its labrun.uid tag, its output so far
    kept), in a database and in MLflow's file store; replayed points they hold are not written twice."""
    from array import array

    from labrun.observers import MlflowObserver, TensorBoardObserver

    record = {"uid": "u-sync", "experiment": {"name": "synced", "sources": []}, "command": "main",
              "host": {"hostname": "h"}, "meta": {}, "config": {"lr": 0.1}, "status": "RUNNING",
              "start_time": "2026-01-01T00:00:00", "heartbeat": "2026-01-01T00:00:00"}

    def points(first, count):
        return {"loss": {"steps": array("d", range(first, first + count)), "values": array("d", [0.5] * count),
                         "timestamps": array("d", [1.7e9 + i for i in range(first, first + count)])}}

    uris = [f"sqlite:///{tmp_path / 'm.db'}", f"file://{tmp_path / 'mlruns'}"]
    for make in [lambda: TensorBoardObserver(str(tmp_path / "tb"))] + [lambda u=u: MlflowObserver(u) for u in uris]:
        first = make()
        run_id = first.started(record, 3)
        first.metrics(points(0, 10))
        first.heartbeat({}, "before\n", None, "2026-01-01T00:00:10")
        later = make()
        assert later.find_run(record) == run_id == 3
        later.resumed(record, run_id)
        later.metrics(points(0, 20))  # a killed run's journal replays from its start: the first 10 are there
        later.ended("COMPLETED", "2026-01-01T00:00:20", 1, None, {"k": 1}, "after\n")

    assert os.listdir(tmp_path / "tb") == ["synced_0003"]
    acc = accumulator(tmp_path / "tb" / "synced_0003")
    assert [p.step for p in acc.Scalars("loss")] == list(range(20)) and texts(acc, "run/status")[-1] == "COMPLETED"
    for uri in uris:
        client, (run,) = mlflow_run(uri, "synced")
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(20)), uri
        assert run.info.status == "FINISHED" and run.info.run_name == "synced #3"
        assert artifact_text(client, run.info.run_id, "cout.txt", tmp_path) == "before\nafter\n"


def test_mlflow_password_is_printed_neither_by_runs_nor_by_sync(exp, tmp_path, mlflow_server):
    secret_url = mlflow_server.url.replace("http://", "http://bob:S3cretPW@")
    out = exp.run("--mlflow", secret_url, "with", "n=5")
    assert out.returncode == 0, out.stderr
    assert "S3cretPW" not in out.stdout + out.stderr
    _, runs = mlflow_run(mlflow_server.sqlite)
    assert runs[0].info.status == "FINISHED"  # recorded, only the password kept quiet

    mlflow_server.stop()  # the next run's delivery fails; its journal waits for `labrun sync`
    env = {"LABRUN_DELIVERY_TIMEOUT": "2"}
    out = exp.run("--mlflow", secret_url, "with", "n=5", env=env)
    assert out.returncode == 0 and "S3cretPW" not in out.stdout + out.stderr
    mlflow_server.start()
    synced = subprocess.run([sys.executable, "-m", "labrun", "sync", "--url", f"mlflow+{secret_url}"],
                            capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "S3cretPW" not in synced.stdout + synced.stderr
    _, runs = mlflow_run(mlflow_server.sqlite)
    assert [run.info.status for run in runs] == ["FINISHED", "FINISHED"]


MLFLOW_USER = """
import mlflow  # the script uses MLflow's own API too
from labrun import Experiment

ex = Experiment("shared")

@ex.config
def cfg():
    lr = 0.1
    note = None
    flag = True

@ex.automain
def main(lr, _run):
    _run.log_scalar("loss", lr)
    mlflow.log_metric("user_metric", 7.0)  # lands in labrun's MLflow run, not a second one
    mlflow.set_tag("user_tag", "yes")
    return lr
"""


def test_user_code_calling_mlflow_lands_in_the_same_run_and_params_follow_mlflow(script, tmp_path):
    exp = script(MLFLOW_USER)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = exp.run("-F", str(tmp_path / "runs"), "--mlflow", uri)
    assert out.returncode == 0, out.stderr
    client, runs = mlflow_run(uri, "shared")
    assert len(runs) == 1  # one run: the user's MLflow calls did not start another
    (run,) = runs
    assert run.data.metrics["user_metric"] == 7.0 and run.data.metrics["loss"] == 0.1
    assert run.data.tags["user_tag"] == "yes" and run.info.status == "FINISHED"
    assert run.data.params["note"] == "None" and run.data.params["flag"] == "True"  # as mlflow.log_params writes
    assert run.info.run_name == "shared #1" and run.data.tags["labrun.run_id"] == "1"


def test_mlflow_alone_does_not_hold_up_the_run_and_synced_runs_look_like_live_ones(exp, tmp_path, mlflow_server):
    out = exp.run("--mlflow", mlflow_server.url, "with", "n=5")
    assert out.returncode == 0, out.stderr
    assert "INFO - both - Started\n" in out.stderr  # no id to wait for: MLflow keeps its own
    live = exp.run("-F", str(tmp_path / "runs"), "--mlflow", mlflow_server.url, "with", "n=5")
    assert live.returncode == 0
    mlflow_server.stop()
    delayed = exp.run("-F", str(tmp_path / "runs"), "--mlflow", mlflow_server.url, "with", "n=5",
                      env={"LABRUN_DELIVERY_TIMEOUT": "2"}, timeout=300)
    assert delayed.returncode == 0
    mlflow_server.start()
    synced = subprocess.run([sys.executable, "-m", "labrun", "sync"], capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    _, runs = mlflow_run(mlflow_server.sqlite)
    by_id = {run.data.tags.get("labrun.run_id"): run for run in runs}
    assert by_id["1"].info.run_name == "both #1" and by_id["2"].info.run_name == "both #2"  # live, then synced
    assert set(by_id["1"].data.tags) == set(by_id["2"].data.tags)
