"""Experiments driven from Python: run(), commands, hooks, seeding, the decorator."""

import os
import random

import numpy as np
import pytest

from labrun import Experiment, Ingredient, experiment
from labrun.errors import CommandLineError, ObserverNotAvailableError


def test_run_returns_the_finished_run():
    ex = Experiment("demo")

    @ex.config
    def cfg():
        a = 2

    @ex.main
    def main(a):
        return a * 3

    run = ex.run(config_updates={"a": 5}, info={"note": 1}, meta_info={"tag": "x"})
    assert run.result == 15 and run.status == "COMPLETED"
    assert run.config["a"] == 5 and run.info == {"note": 1}
    assert run.meta_info["tag"] == "x" and run.meta_info["config_updates"] == {"a": 5}
    assert run.start_time <= run.stop_time
    assert run.experiment_info["name"] == "demo"
    assert ex.current_run is None


def test_failing_main_marks_run_failed_and_reraises():
    ex = Experiment("demo")
    seen = {}

    @ex.main
    def main(_run):
        seen["run"] = _run
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        ex.run()
    assert seen["run"].status == "FAILED"
    assert "ValueError: boom" in "".join(seen["run"].fail_trace)


def test_current_run_during_the_run():
    ex = Experiment("demo")

    @ex.main
    def main(_run):
        return ex.current_run is _run

    assert ex.run().result is True


def test_global_generators_are_seeded():
    ex = Experiment("demo")

    @ex.main
    def main():
        return random.random(), float(np.random.rand())

    assert ex.run(config_updates={"seed": 3}).result == ex.run(config_updates={"seed": 3}).result
    assert ex.run(config_updates={"seed": 3}).result != ex.run(config_updates={"seed": 4}).result


def test_pre_and_post_run_hooks_order():
    ex = Experiment("demo")
    calls = []

    @ex.config
    def cfg():
        n = 1

    @ex.pre_run_hook
    def before(n):
        calls.append(("pre", n))

    @ex.post_run_hook
    def after():
        calls.append("post")

    @ex.main
    def main():
        calls.append("main")

    ex.run()
    assert calls == [("pre", 1), "main", "post"]


def test_commands_ingredient_commands_and_unobserved():
    data = Ingredient("data")

    @data.command
    def stats():
        return "data stats"

    ex = Experiment("demo", ingredients=[data])

    @ex.command(unobserved=True)
    def evaluate():
        return "evaluated"

    from labrun.observer import RunObserver

    ex.observers.append(RunObserver())
    assert ex.run("evaluate").result == "evaluated"
    assert ex.run("evaluate").observers == []
    assert ex.run("data.stats").result == "data stats"
    with pytest.raises(CommandLineError, match="unknown command 'evaluat'.*did you mean 'evaluate'"):
        ex.run("evaluat")
    with pytest.raises(CommandLineError, match="no main function"):
        ex.run()


def test_observer_options_are_resolved_through_the_registry():
    ex = Experiment("demo")

    @ex.main
    def main():
        return 1

    with pytest.raises(ObserverNotAvailableError, match="no observer is registered for 'nosuch://'"):
        ex.run(options={"--observer": ["nosuch://x"]})
    with pytest.raises(ObserverNotAvailableError, match="has no scheme"):
        ex.run(options={"observer": ["runs"]})
    with pytest.raises(CommandLineError, match="unknown option '--forse'.*did you mean 'force'"):
        ex.run(options={"--forse": True})


def test_third_party_observer_through_entry_points(tmp_path, monkeypatch):
    dist = tmp_path / "fakeobs-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeobs\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[labrun.observers]\nfake = fakeobs_mod:make\n")
    (tmp_path / "fakeobs_mod.py").write_text(
        "from labrun.observer import RunObserver\n"
        "class Obs(RunObserver):\n    def __init__(self, url):\n        self.url = url\n"
        "def make(url):\n    return Obs(url)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ex = Experiment("demo")

    @ex.main
    def main():
        return 1

    run = ex.run(options={"-o": "fake://somewhere"})
    assert [o.url for o in run.observers] == ["fake://somewhere"]


def test_missing_backend_is_reported_with_the_install_command(monkeypatch):
    import sys

    from labrun.recording.registry import create_observer

    monkeypatch.setitem(sys.modules, "pymongo", None)  # as if pymongo were not installed
    with pytest.raises(ObserverNotAvailableError) as info:
        create_observer("mongodb://user:secret@localhost/db")
    assert "secret" not in str(info.value) and "pip install 'labrun[mongo]'" in str(info.value)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ObserverNotAvailableError, match=r"pip install 'labrun\[mlflow\]'"):
        create_observer("mlflow+http://user:secret@localhost:5000")
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ObserverNotAvailableError, match=r"pip install 'labrun\[tensorboard\]'"):
        create_observer("tensorboard://logs")


def test_tensorboard_and_mlflow_options_name_observer_urls():
    from labrun.recording.registry import observer_urls
    from labrun.cli.options import Options

    urls = observer_urls(Options.from_mapping({"tensorboard": "logs", "mlflow": "http://127.0.0.1:5000"}))
    assert urls == ["tensorboard://logs", "mlflow+http://127.0.0.1:5000"]
    assert observer_urls(Options(mlflow="mlruns")) == [f"mlflow+file://{os.path.abspath('mlruns')}"]


def test_mongo_option_forms():
    from labrun.recording.registry import mongo_url

    assert mongo_url("mydb") == "mongodb://localhost:27017/mydb"
    assert mongo_url("host:1234:db.pre") == "mongodb://host:1234/db?collection_prefix=pre"
    assert mongo_url("mongodb://u:p@h/db") == "mongodb://u:p@h/db"


def test_redaction():
    from labrun._util.redact import redact_url

    assert redact_url("mongodb://alice:s3cret@db:27017/x?tls=true") == "mongodb://alice:***@db:27017/x?tls=true"
    assert redact_url("http://h/?token=abc&x=1") == "http://h/?token=***&x=1"


# -- the decorator ---------------------------------------------------------------------------------------------
def test_decorator_bare_defaults_are_the_lowest_layer():
    @experiment
    def train(lr=0.1, epochs=2, _run=None):
        return lr * epochs

    assert isinstance(train, Experiment)
    assert train.run().result == pytest.approx(0.2)
    assert train.run(config_updates={"epochs": 5}).result == pytest.approx(0.5)
    assert "_run" not in train.run().config
    assert train(epochs=3) == pytest.approx(0.3)  # calling it runs a run with those updates
    assert train.__wrapped__(1, 3) == 3  # the plain function


def test_decorator_with_arguments_scopes_and_named_configs():
    data = Ingredient("data")

    @data.config
    def data_cfg():
        n = 10

    from labrun.observer import RunObserver

    sentinel = RunObserver()

    @experiment(name="dec", observers=[sentinel], ingredients=[data])
    def main(lr=0.1, width=4):
        return lr, width

    @main.config
    def scope():
        width = 8  # overrides the default

    @main.named_config
    def wide():
        width = 64

    @main.command
    def show(width):
        return width

    assert main.name == "dec" and main.observers == [sentinel]
    assert main.run().result == (0.1, 8)
    assert main.run(named_configs=["wide"]).result == (0.1, 64)
    assert main.run("show").result == 8
    assert main.run().config["data"] == {"n": 10}


def test_sacred_constructor_keywords_and_name_option(tmp_path):
    ex = Experiment("kw", interactive=True, base_dir=str(tmp_path), save_git_info=False)

    @ex.main
    def main(_run):
        return _run.experiment_info

    info = ex.run(options={"--name": "other"}).result
    assert info["name"] == "other" and info["base_dir"] == str(tmp_path)
