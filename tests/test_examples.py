"""The shipped examples run as the README shows them."""

import json
import subprocess
import sys

from conftest import ROOT


def run_example(name, *args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_quickstart_runs_and_takes_updates():
    out = run_example("quickstart.py", "with", "epochs=2", "fast")
    assert out.returncode == 0, out.stderr
    # 'fast' sets epochs=1, but explicit updates rank above named configs: two epochs run
    assert "epoch 1: loss" in out.stderr and "epoch 2" not in out.stderr
    assert "Completed after" in out.stderr


def test_decorator_example_runs_with_updates():
    out = run_example("decorator.py", "with", "epochs=2", "lr=1.0")
    assert out.returncode == 0, out.stderr
    assert "epoch 1: lr 0.64000" in out.stderr and "epoch 2" not in out.stderr  # decay 0.8 from its scope
    out = run_example("decorator.py", "print_config", "with", "short", "decay=0.5")
    assert "epochs = 1" in out.stdout and "final = 0.0125" in out.stdout


def test_sweep_example_and_its_sweep_file(tmp_path):
    out = run_example("sweep.py", "-M", "-F", "runs", "-j", "2", "with", "lr=0.3,0.1", "model=linear,quadratic",
                      "steps=20", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 planned: 4 to run" in out.stdout and "4 of 4 completed" in out.stdout
    out = run_example("sweep.py", "-M", "-F", "runs", "with", str(ROOT / "examples" / "sweep.yaml"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "12 planned: 12 to run" in out.stdout and "12 of 12 completed" in out.stdout


def test_mongodb_example_records_a_run_omniboard_can_show(mongo_url):
    out = run_example("mongodb.py", "-m", mongo_url, "with", "epochs=2", "steps_per_epoch=50")
    assert out.returncode == 0, out.stderr
    assert "epoch 1: loss" in out.stdout
    from labrun.readback import open_store

    store = open_store(mongo_url)
    run = store.run(1)
    assert run.record["status"] == "COMPLETED" and run.record["info"]["best.epoch"] == 1
    assert len(store.metrics(1)["train.loss"]["values"]) == 100 and store.metrics(1)["val.accuracy"]["steps"] == [0, 1]
    store.close()


def test_tensorboard_mlflow_example_lands_in_both(tmp_path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # As its docstring runs it: everything it writes lands under runs/, which git ignores.
    uri = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    out = run_example("tensorboard_mlflow.py", "-F", "runs", "--tensorboard", "runs/tensorboard", "--mlflow", uri,
                      "with", "lr=0.2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name != "journal"] == ["runs"]  # journal: the test's own
    (folder,) = (tmp_path / "runs" / "tensorboard").iterdir()
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    assert len(acc.Scalars("train/loss")) == 300 and [p.step for p in acc.Scalars("val/accuracy")][0] == 49
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tb_mlflow_example").experiment_id])
    assert run.data.params["lr"] == "0.2" and run.data.params["optimizer.name"] == "sgd"
    assert abs(run.data.metrics["train/loss"] - acc.Scalars("train/loss")[-1].value) < 1e-6  # float32 in TensorBoard
    assert "summary.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert (tmp_path / "runs" / "mlartifacts" / "tb_mlflow_example").is_dir()  # beside the database, not the cwd
    listed = subprocess.run([sys.executable, "-m", "labrun", "ls", "runs", "--format", "json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert [run["id"] for run in json.loads(listed.stdout)] == [1]  # the other tools' folders are not runs


def test_sklearn_study_browsed_as_docs_browse_shows(tmp_path):
    """docs/browse.md's tour, run for real: the sweep, one more run, ls, compare, plot, and its Python block."""
    import re

    out = run_example("sklearn_study.py", "-M", "-F", "runs", "with", "model=logistic,forest,svm", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert run_example("sklearn_study.py", "-F", "runs", "with", "model=svm", "C=10", cwd=tmp_path).returncode == 0

    def labrun(*args):
        done = subprocess.run([sys.executable, "-m", "labrun", *args], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path, env={**__import__("os").environ, "NO_COLOR": "1"})
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = labrun("ls", "runs").splitlines()
    assert listed[0].split()[7:] == ["model", "C", "test_accuracy", "train_accuracy", "result"]
    assert [line.split()[0] for line in listed[2:]] == ["4", "3", "2", "1"]
    compared = labrun("compare", "runs", "3", "4")
    assert re.search(r"^\s+C\s+1\s+10$", compared, re.M) and "test_accuracy (min)" in compared
    assert labrun("plot", "runs", "--metric", "test_accuracy", "--output", "curves.png").startswith("wrote curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    docs = (ROOT / "docs" / "browse.md").read_text()
    block = re.search(r"## From Python\n\n```python\n(.*?)```", docs, re.S).group(1)
    shown = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "<run 4 of 'digits'" in shown.stdout or "<run 3 of 'digits'" in shown.stdout
    assert re.search(r"predicted \[0 1 2 3 4 . 6 7 8 9\] actual \[0 1 2 3 4 5 6 7 8 9\]", shown.stdout)


def test_from_sacred_example_records_sacreds_forms(tmp_path):
    import json

    out = run_example("from_sacred.py", "-F", "runs", "--tag", "baseline", "with", "seed=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Result: 0.0118" in out.stderr and 'Started run with ID "1"' in out.stderr
    record = json.loads((tmp_path / "runs" / "1" / "run.json").read_text())
    assert record["result"]["py/object"] == "numpy.float64" and record["host"]["numpy_version"]
    info = json.loads((tmp_path / "runs" / "1" / "info.json").read_text())
    assert info["tag"] == "baseline" and "py/tuple" in info["fit"]
    careful = run_example("from_sacred.py", "-F", "runs", "print_config", "with", "careful", cwd=tmp_path)
    assert "lr = 0.05" in careful.stdout
    diverged = run_example("from_sacred.py", "-F", "runs", "with", "lr=9", cwd=tmp_path)
    assert diverged.returncode == 1
    assert json.loads((tmp_path / "runs" / "2" / "run.json").read_text())["status"] == "DIVERGED"
