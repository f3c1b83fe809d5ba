"""The shipped examples run as the README shows them."""

import subprocess
import sys

from conftest import ROOT


def run_example(name, *args):
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_quickstart_runs_and_takes_updates():
    out = run_example("quickstart.py", "with", "epochs=2", "fast")
    assert out.returncode == 0, out.stderr
    # 'fast' sets epochs=1, but explicit updates rank above named configs: two epochs run
    assert "epoch 1: loss" in out.stderr and "epoch 2" not in out.stderr
    assert "Completed after" in out.stderr


def test_decorator_example_runs_with_updates():
    out = run_example("decorator.py", "with", "epochs=2", "lr=1.0")
    assert out.returncode == 0, out.stderr
    assert "epoch 1: lr 0.25000" in out.stderr and "epoch 2" not in out.stderr
    out = run_example("decorator.py", "print_config")
    assert "epochs = 3" in out.stdout


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
