"""labrun ls, show, compare and plot, and the Python store API, on a file store and on MongoDB."""

import csv
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from labrun.readback import open_store

HANG_GUARD = 300

STUDY = """
import os, pickle, sys, tempfile
from labrun import Experiment

ex = Experiment("study")

@ex.config
def cfg():
    lr = 0.1          # learning rate
    model = {"depth": 2, "kind": "mlp"}
    mode = "ok"
    steps = 20

@ex.automain
def main(lr, model, mode, steps, _run):
    for step in range(steps):
        _run.log_scalar("loss", 1.0 / (1 + step * lr * model["depth"]))
    _run.info["best_step"] = steps - 1
    if mode == "fail":
        raise ValueError("diverged")
    if mode == "interrupt":
        raise KeyboardInterrupt
    if mode == "die":
        import time
        while True:  # killed by the test once the stores hold the run
            _run.log_scalar("alive", 1.0)
            time.sleep(0.05)
    path = os.path.join(tempfile.mkdtemp(), "model.pkl")
    with open(path, "wb") as f:
        pickle.dump({"lr": lr, "depth": model["depth"]}, f)
    _run.add_artifact(path, "model.pkl")
    return 1.0 / (1 + steps * lr)
"""


def labrun(*args, cwd):
    return subprocess.run([sys.executable, "-m", "labrun", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=HANG_GUARD, env={**os.environ, "NO_COLOR": "1"})


def wait_for(condition, what):
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"hang guard: {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def study(tmp_path_factory, mongo_server_url):
    """Five runs recorded in both a file store and MongoDB: two completed with different configs, one
    failed, one interrupted, one killed (DIED); one run's package versions differ."""
    folder = tmp_path_factory.mktemp("study")
    (folder / "study.py").write_text(STUDY)
    mongo = f"{mongo_server_url}/browse_{os.urandom(3).hex()}"
    env = {**os.environ, "LABRUN_JOURNAL_DIR": str(folder / "journal"), "LABRUN_DELIVERY_TIMEOUT": "600",
           "LABRUN_BACKGROUND_DELIVERY": "0"}
    base = [sys.executable, "study.py", "-F", "runs", "-m", mongo, "-b", "0.3", "-l", "ERROR", "with"]
    for updates in (["lr=0.1"], ["lr=0.01", "model.depth=3"], ["lr=0.5", "mode=fail"], ["mode=interrupt"]):
        subprocess.run(base + updates, cwd=folder, env=env, capture_output=True, timeout=HANG_GUARD)
    dying = subprocess.Popen(base + ["mode=die", "lr=0.2"], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        import pymongo

        client = pymongo.MongoClient(mongo)
        db = client.get_default_database()
        wait_for(lambda: (folder / "runs" / "5" / "metrics.jsonl").exists() and
                 "alive" in json.loads((folder / "runs" / "5" / "run.json").read_text())["labrun"]["metrics"] and
                 "alive" in ((db.runs.find_one({"_id": 5}) or {}).get("labrun") or {}).get("metrics", {}),
                 "the dying run reached both stores")
    finally:
        dying.send_signal(signal.SIGKILL)
        dying.wait(HANG_GUARD)
    # a package upgraded between runs 1 and 2 (what `compare` must show)
    run_json = folder / "runs" / "2" / "run.json"
    record = json.loads(run_json.read_text())
    distributions = record["environment"]["distributions"]
    distributions.append("tinypkg==2.0")
    run_json.write_text(json.dumps(record))
    first = json.loads((folder / "runs" / "1" / "run.json").read_text())
    first["environment"]["distributions"].append("tinypkg==1.0")
    (folder / "runs" / "1" / "run.json").write_text(json.dumps(first))
    for run_id, version in ((1, "1.0"), (2, "2.0")):
        db.runs.update_one({"_id": run_id}, {"$push": {"experiment.environment.distributions": f"tinypkg=={version}"}})
    client.close()
    wait_for(lambda: open_store(str(folder / "runs")).run(5).status == "DIED", "run 5 counts as DIED")
    return {"file": str(folder / "runs"), "mongo": mongo, "folder": folder}


@pytest.fixture(params=["file", "mongo"])
def store(request, study):
    return study[request.param]


def test_ls_table_lists_runs_newest_first_with_what_differs(store, study):
    out = labrun("ls", store, cwd=study["folder"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = lines[0].split()
    assert header[:7] == ["id", "experiment", "status", "start", "duration", "host", "commit"]
    assert "lr" in header and "model.depth" in header and "mode" in header and "seed" not in header
    assert "loss" in header and "result" in header and "system/cpu_percent" not in header
    assert [line.split()[0] for line in lines[2:7]] == ["5", "4", "3", "2", "1"]
    statuses = {line.split()[0]: line.split()[2] for line in lines[2:7]}
    assert statuses == {"5": "DIED", "4": "INTERRUPTED", "3": "FAILED", "2": "COMPLETED", "1": "COMPLETED"}


def test_ls_formats_are_complete(store, study):
    rows = list(csv.DictReader(io.StringIO(labrun("ls", store, "--format", "csv", cwd=study["folder"]).stdout)))
    assert [r["id"] for r in rows] == ["5", "4", "3", "2", "1"]
    assert rows[3]["config.model.depth"] == "3" and rows[3]["config.seed"]  # every entry, not only differing
    assert float(rows[4]["metrics.loss"]) == pytest.approx(1 / (1 + 19 * 0.1 * 2))
    assert rows[4]["metrics.loss:count"] == "20"
    runs = json.loads(labrun("ls", store, "--format", "json", cwd=study["folder"]).stdout)
    assert runs[3]["config"]["model"] == {"depth": 3, "kind": "mlp"} and runs[3]["status"] == "COMPLETED"
    assert runs[4]["metrics"]["loss"]["min"] == pytest.approx(1 / (1 + 19 * 0.1 * 2))
    markdown = labrun("ls", store, "--format", "markdown", cwd=study["folder"]).stdout.splitlines()
    assert markdown[0].startswith("| id | experiment | status") and markdown[1].startswith("| --- |")
    assert len(markdown) == 7


def test_ls_where_sort_and_bad_keys(store, study):
    def ids(*args):
        out = labrun("ls", store, "--format", "json", *args, cwd=study["folder"])
        assert out.returncode == 0, out.stderr
        return [r["id"] for r in json.loads(out.stdout)]

    assert ids("--where", "config.model.depth=3") == [2]
    assert ids("--where", "metrics.loss<0.5") == [5, 4, 3, 1]
    assert ids("--where", "metrics.loss:min<0.5") == [5, 4, 3, 1]  # the killed run's too, from its points
    assert ids("--where", "status=completed", "--where", "config.lr<0.05") == [2]
    assert ids("--where", "status!=COMPLETED", "--sort", "config.lr") == [4, 5, 3]
    assert ids("--where", "config.mode~^(fail|die)$") == [5, 3]
    assert ids("--where", "start>1h") == [5, 4, 3, 2, 1] and ids("--where", "start<1h") == []
    assert ids("--sort", "-config.lr", "--where", "status=COMPLETED") == [1, 2]
    assert ids("--where", "info.best_step=19", "--where", "result<0.5") == [1]
    bad = labrun("ls", store, "--where", "config.lrr<1", cwd=study["folder"])
    assert bad.returncode == 2 and "no run has 'config.lrr'" in bad.stderr and "did you mean 'config.lr'" in bad.stderr
    worse = labrun("ls", store, "--where", "config.lr", cwd=study["folder"])
    assert worse.returncode == 2 and "KEY OP VALUE" in worse.stderr
    columns = labrun("ls", store, "--columns", "config.lr,metrics.loss:min", "--format", "csv", cwd=study["folder"])
    assert columns.stdout.splitlines()[0].startswith("id,config.lr,metrics.loss:min")


def test_show_one_run(store, study):
    def run_args(run_id):
        return [f"{store}/{run_id}"] if not store.startswith("mongodb") else [store, str(run_id)]

    out = labrun("show", *run_args(1), cwd=study["folder"])
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("Run 1 of study in") and "COMPLETED" in text.splitlines()[0]
    assert "* lr = 0.1" in text and "# learning rate" in text and "  model.kind = 'mlp'" in text
    assert "loss" in text and "Files:" in text and "model.pkl (" in text
    assert "info" not in text or "best_step = 19" in text
    assert "Run it again: labrun rerun" in text
    failed = labrun("show", *run_args(3), cwd=study["folder"]).stdout
    assert "Failure:" in failed and "ValueError: diverged" in failed


def test_compare_shows_config_metrics_and_package_drift(store, study):
    args = [f"{store}/1", f"{store}/2"] if not store.startswith("mongodb") else [store, "1", "2"]
    out = labrun("compare", *args, cwd=study["folder"])
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.startswith("  ")}
    assert rows["lr"] == ["0.1", "0.01"] and rows["model.depth"] == ["2", "3"]
    assert "model.kind" not in rows  # the same in both: shown only with --all
    assert rows["package"] == ["tinypkg", "1.0", "2.0"]
    assert "loss" in rows
    everything = labrun("compare", *args, "--all", cwd=study["folder"]).stdout
    assert "model.kind" in everything
    where = labrun("compare", store, "--where", "status=COMPLETED", cwd=study["folder"])
    assert where.returncode == 0 and "run 2" in where.stdout and "run 1" in where.stdout and "run 3" not in where.stdout


def test_plot_to_png_and_to_the_terminal(store, study, tmp_path):
    import matplotlib.image

    png = tmp_path / "loss.png"
    out = labrun("plot", store, "--where", "status=COMPLETED", "--output", str(png), cwd=study["folder"])
    assert out.returncode == 0, out.stderr
    image = matplotlib.image.imread(str(png))
    assert image.shape[:2] == (320, 800)  # one panel: 8 x 3.2 inches at 100 dpi
    two = tmp_path / "two.png"
    labrun("plot", store, "--where", "status=COMPLETED", "--metric", "loss", "--metric", "system/rss_mb",
           "--output", str(two), cwd=study["folder"])
    assert matplotlib.image.imread(str(two)).shape[:2] == (640, 800)
    text = labrun("plot", store, "--where", "status=COMPLETED", "--smooth", "3", cwd=study["folder"])
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("loss by step, smoothed over 3")
    assert "│" in text.stdout and "└" in text.stdout
    assert "  ** 2 lr=0.01 model.depth=3" in text.stdout and "  oo 1 lr=0.1 model.depth=2" in text.stdout
    bad = labrun("plot", store, "--metric", "los", cwd=study["folder"])
    assert bad.returncode == 2 and "did you mean 'loss'" in bad.stderr


def test_python_api_dataframe_and_artifact(store, study):
    import labrun as api

    runs = api.open_store(store).runs(where="status=COMPLETED", sort="metrics.loss")
    assert [r.id for r in runs] == [1, 2]
    best = runs[0]
    assert best.config["model"]["depth"] == 2 and best.status == "COMPLETED" and best.experiment == "study"
    assert best.info["best_step"] == 19 and best.result == pytest.approx(1 / 3)
    assert best.start_time < best.stop_time and best.host["hostname"]
    loss = best.metrics["loss"]
    assert list(loss.steps[:3]) == [0, 1, 2] and loss.values[-1] == pytest.approx(1 / (1 + 19 * 0.2))
    assert type(loss.values).__name__ == "ndarray" and len(loss.timestamps) == 20
    assert best.artifacts == ["model.pkl"]
    assert pickle.load(best.open_artifact("model.pkl")) == {"lr": 0.1, "depth": 2}
    assert "loss" in best.output or best.output == ""
    frame = api.open_store(store).runs().to_dataframe()
    assert list(frame["id"]) == [5, 4, 3, 2, 1]
    assert {"config.lr", "config.model.depth", "metrics.loss", "metrics.loss.min", "status"} <= set(frame.columns)
    assert frame.set_index("id").loc[2, "config.model.depth"] == 3
    with pytest.raises(api.LabrunError, match="did you mean 'config.lr'"):
        api.open_store(store).runs(where="config.lrx>1")


def test_runs_recorded_before_metric_summaries_still_list(study, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(study["file"], old)
    record = json.loads((old / "1" / "run.json").read_text())
    del record["labrun"]  # as labrun 0.4 wrote it
    (old / "1" / "run.json").write_text(json.dumps(record))
    out = labrun("ls", str(old), "--format", "json", cwd=tmp_path)
    run = [r for r in json.loads(out.stdout) if r["id"] == 1][0]
    assert run["metrics"]["loss"]["count"] == 20


def test_reading_stores_never_imports_the_run_machinery(study):
    code = ("import sys; from labrun.cli.tool import main\n"
            "for args in (['ls', sys.argv[1]], ['show', sys.argv[1] + '/1'], ['compare', sys.argv[1], '1', '2']):\n"
            "    main(args)\n"
            "print('MODULES', ' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, study["file"]], capture_output=True, text=True,
                         timeout=HANG_GUARD, cwd=ROOT)
    loaded = set(out.stdout.split("MODULES ", 1)[1].split())
    machinery = {"labrun.run", "labrun.experiment", "labrun.recording.journal", "labrun.recording.dispatcher",
                 "labrun.recording.recorder", "labrun.recording.session", "labrun.observers.file_storage",
                 "labrun.observers.file_metrics", "labrun.observers.mongo"}
    assert not loaded & machinery, loaded & machinery


def test_metric_summaries_leave_nan_out_wherever_it_is():
    from array import array

    from labrun.stores import metric_stats

    nan = float("nan")
    stats = {}
    metric_stats.update(stats, {"a": {"steps": array("d", [0, 1, 2]), "values": array("d", [nan, 2.0, 1.0])},
                                "b": {"steps": array("d", [0, 1, 2]), "values": array("d", [1.0, nan, 0.5])}})
    metric_stats.update(stats, {"a": {"steps": array("d", [3]), "values": array("d", [nan])}})
    assert stats["a"] == {"count": 4, "first": None, "last": None, "min": 1.0, "max": 2.0, "last_step": 3}
    assert (stats["b"]["min"], stats["b"]["max"], stats["b"]["first"], stats["b"]["last"]) == (0.5, 1.0, 1.0, 0.5)


def test_every_subcommand_answers_help_with_its_own_usage():
    from labrun.cli.tool import subcommands

    assert {"ls", "show", "compare", "plot", "rerun", "sync"} <= set(subcommands())
    for name in subcommands():
        for flag in ("--help", "-h"):
            out = subprocess.run([sys.executable, "-m", "labrun", name, flag], capture_output=True, text=True,
                                 timeout=HANG_GUARD)
            assert out.returncode == 0, (name, out.stderr)
            assert out.stdout.startswith(f"Usage:\n  labrun {name}") and "Commands:" not in out.stdout
    rerun_help = subprocess.run([sys.executable, "-m", "labrun", "rerun", "--help"], capture_output=True, text=True,
                                timeout=HANG_GUARD).stdout
    assert "--dry-run" in rerun_help and "--where" not in rerun_help
