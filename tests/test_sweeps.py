"""Sweeps (-M, sweep files, ex.sweep), resume, parallel runs, and the @experiment decorator's config."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from labrun import Experiment, experiment
from labrun.errors import CommandLineError, ConfigError
from labrun.readback import open_store
from labrun.sweeps.grid import parse_multirun_tokens

HANG_GUARD = 300  # seconds: only a guard against a hang, never a speed requirement

SWEEP_EXP = """
import os, time
from labrun import Experiment

ex = Experiment("grid")

@ex.config
def cfg():
    lr = 0.1
    model = "svm"
    layers = [1]
    block = ""       # a file: while it exists, the run with lr=0.001 waits (for the interrupt test)
    rendezvous = ""  # a folder: each run waits there until `together` runs have started
    together = 2

@ex.named_config
def small():
    layers = [8]

@ex.named_config
def large():
    layers = [64, 64]

def wait_for(condition):
    deadline = time.monotonic() + {guard}
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("hang guard")
        time.sleep(0.05)

@ex.automain
def main(lr, model, layers, block, rendezvous, together, seed, _run):
    if rendezvous:
        open(os.path.join(rendezvous, f"{{lr}}-{{model}}"), "w").close()
        wait_for(lambda: len(os.listdir(rendezvous)) >= together)
    if block and lr == 0.001:
        open(block + ".reached", "w").close()
        wait_for(lambda: not os.path.exists(block))
    if model == "bad":
        raise ValueError("this model always fails")
    _run.log_scalar("loss", lr * len(layers))
    return lr * 10
""".format(guard=HANG_GUARD)


def sweep_env(**extra):
    return {**os.environ, "NO_COLOR": "1", **extra}


def run_sweep(path, *args, timeout=HANG_GUARD):
    return subprocess.run([sys.executable, str(path), *args], cwd=path.parent, env=sweep_env(),
                          capture_output=True, text=True, timeout=timeout)


def records(store):
    return open_store(str(store)).records()


# -- grid syntax ----------------------------------------------------------------------------------------------
def values_of(*tokens):
    return [p.values for p in parse_multirun_tokens(tokens).points()]


def test_grid_syntaxes_expand():
    assert values_of("lr=0.1,0.01", "model=svm,forest") == [
        {"lr": 0.1, "model": "svm"}, {"lr": 0.1, "model": "forest"},
        {"lr": 0.01, "model": "svm"}, {"lr": 0.01, "model": "forest"}]
    assert values_of("layers=[1,2],[3,4]") == [{"layers": [1, 2]}, {"layers": [3, 4]}]
    assert values_of("n=range(1,7,2)") == [{"n": 1}, {"n": 3}, {"n": 5}]
    assert values_of("n=range(0,3)") == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert values_of("x=linspace(0,1,5)") == [{"x": v} for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert [p["lr"] for p in values_of("lr=logspace(-3,-1,3)")] == pytest.approx([0.001, 0.01, 0.1])
    assert values_of("small,large") == [{"with": "small"}, {"with": "large"}]
    assert values_of("name='a,b',c") == [{"name": "a,b"}, {"name": "c"}]
    assert values_of("lr=0.1,range(1,3)") == [{"lr": 0.1}, {"lr": 1}, {"lr": 2}]
    one = parse_multirun_tokens(["lr=0.1", "small"])
    assert one.fixed == ["lr=0.1", "small"] and len(one.points()) == 1
    tokens = parse_multirun_tokens(["name=svm,forest"]).points()[1].tokens
    assert tokens == ["name='forest'"]
    for bad, message in [("n=range(1)", "range"), ("x=linspace(0,1)", "linspace"), ("n=range(a,b)", "numbers")]:
        with pytest.raises(CommandLineError, match=message):
            parse_multirun_tokens([bad])
    with pytest.raises(CommandLineError, match="swept twice"):
        parse_multirun_tokens(["lr=1,2", "lr=3,4"])


def test_without_multirun_a_comma_is_a_list_and_a_float_entry_refuses_it(script):
    exp = script("""
        from labrun import Experiment
        ex = Experiment("t")
        @ex.config
        def cfg():
            lr = 0.1
        @ex.automain
        def main(lr):
            print("LR", repr(lr))
    """)
    out = exp.run("-u", "with", "lr=0.1,0.01")
    assert out.returncode == 2 and "add -M: -M with lr=...,..." in out.stderr  # a sweep without -M, most likely
    out = exp.run("-u", "-f", "with", "lr=0.1,0.01")
    assert out.returncode == 0, out.stderr
    assert "LR [0.1, 0.01]" in out.stdout  # Sacred's tuple, stored as JSON's list


def test_sweep_file_grid_and_list(tmp_path, monkeypatch):
    (tmp_path / "sweep.yaml").write_text(
        "grid:\n  lr: [0.1, 0.01]\n  model: svm\n  with: [small, large]\nlist:\n  - {layers: [2]}\n"
        "  - {depth: 'range(1, 3)'}\n")
    monkeypatch.chdir(tmp_path)
    grid = parse_multirun_tokens(["sweep.yaml", "epochs=3"])
    points = grid.points()
    assert len(points) == 8
    assert points[0].tokens == ["model='svm'", "epochs=3", "lr=0.1", "small", "layers=[2]"]
    assert points[0].values == {"lr": 0.1, "with": "small", "layers": [2]}
    (tmp_path / "bad.yaml").write_text("grid:\n  lr: []\n")
    with pytest.raises(CommandLineError, match="empty list"):
        parse_multirun_tokens(["bad.yaml"])


# -- sweeps from the command line ---------------------------------------------------------------------------------
@pytest.fixture
def sweep_script(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text(SWEEP_EXP)
    return path


def test_four_run_sweep_in_the_file_store(sweep_script, tmp_path):
    out = run_sweep(sweep_script, "-M", "-F", "runs", "with", "lr=0.1,0.01", "model=svm,forest", "small,large",
                    "together=1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "8 planned: 8 to run" in out.stdout
    runs = records(tmp_path / "runs")
    assert sorted(r["id"] for r in runs) == list(range(1, 9))
    sweeps = [r["meta"]["sweep"] for r in runs]
    assert {s["id"] for s in sweeps} == {sweeps[0]["id"]} and sorted(s["index"] for s in sweeps) == list(range(8))
    assert all(s["size"] == 8 and "-M -F runs with lr=0.1,0.01" in s["command"] for s in sweeps)
    configs = {(r["config"]["lr"], r["config"]["model"], tuple(r["config"]["layers"])) for r in runs}
    assert len(configs) == 8 and (0.01, "forest", (64, 64)) in configs
    assert all(r["status"] == "COMPLETED" and r["result"] == r["config"]["lr"] * 10 for r in runs)
    # the table: one row per run, with the swept values and the metric's last value
    table = out.stdout[out.stdout.index("#  id"):]
    assert table.count("COMPLETED") == 8 and "loss" in table.splitlines()[0]
    # seeds are derived, not random: the same sweep again matches every run and runs nothing
    again = run_sweep(sweep_script, "-M", "-F", "runs", "with", "model=svm,forest", "lr=0.01,0.1", "small,large",
                      "together=1")
    assert again.returncode == 0 and "8 planned: 8 already completed, 0 to run" in again.stdout
    assert len(records(tmp_path / "runs")) == 8
    # another sweep seed gives other seeds, hence other configs
    seeded = run_sweep(sweep_script, "-M", "-F", "runs", "with", "lr=0.1,0.01", "together=1", "seed=7")
    assert "2 planned: 2 to run" in seeded.stdout
    assert {r["meta"]["sweep"]["seed"] for r in records(tmp_path / "runs")[8:]} == {7}
    # labrun ls finds a sweep's runs by its id
    listed = subprocess.run([sys.executable, "-m", "labrun", "ls", "runs", "--where", f"sweep={sweeps[0]['id']}",
                             "--format", "json"], cwd=tmp_path, capture_output=True, text=True, timeout=HANG_GUARD)
    assert sorted(run["id"] for run in json.loads(listed.stdout)) == list(range(1, 9))


def test_sweep_in_mongodb_with_two_jobs_runs_two_at_once(sweep_script, tmp_path, mongo_url):
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    out = run_sweep(sweep_script, "-M", "-j", "2", "-m", mongo_url, "with", "lr=0.1,0.01", "model=svm,forest",
                    f"rendezvous={rendezvous}", "together=2")
    assert out.returncode == 0, out.stdout + out.stderr
    runs = records(mongo_url)
    assert sorted(r["id"] for r in runs) == [1, 2, 3, 4]
    assert len({r["meta"]["sweep"]["id"] for r in runs}) == 1
    assert sorted(r["meta"]["sweep"]["index"] for r in runs) == [0, 1, 2, 3]
    assert all(r["status"] == "COMPLETED" and r["meta"]["sweep"]["size"] == 4 for r in runs)
    assert "sweep " + runs[0]["meta"]["sweep"]["id"] in out.stdout and "/t_" in out.stdout


def test_two_jobs_overlap_in_the_records(sweep_script, tmp_path):
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    out = run_sweep(sweep_script, "-M", "-j", "2", "-F", "runs", "with", "lr=0.1,0.01", f"rendezvous={rendezvous}",
                    "together=2")
    assert out.returncode == 0, out.stdout + out.stderr
    first, second = records(tmp_path / "runs")
    # each run waited until the other had started: with one job at a time this sweep would hang
    assert first["start_time"] < second["stop_time"] and second["start_time"] < first["stop_time"]


def test_failing_combination_does_not_stop_the_sweep(sweep_script, tmp_path):
    out = run_sweep(sweep_script, "-M", "-F", "runs", "with", "model=svm,bad,forest", "together=1")
    assert out.returncode == 1
    assert "this model always fails" in out.stdout  # the failed run's last lines, shown when it failed
    statuses = {r["config"]["model"]: r["status"] for r in records(tmp_path / "runs")}
    assert statuses == {"svm": "COMPLETED", "bad": "FAILED", "forest": "COMPLETED"}
    again = run_sweep(sweep_script, "-M", "-F", "runs", "with", "model=svm,bad,forest", "together=1")
    assert "3 planned: 2 already completed, 1 to run (retrying 1 FAILED)" in again.stdout
    fast = run_sweep(sweep_script, "-M", "-F", "fast", "--fail-fast", "with", "model=bad,svm", "together=1")
    assert fast.returncode == 1 and "NOT RUN" in fast.stdout
    assert [r["status"] for r in records(tmp_path / "fast")] == ["FAILED"]


def test_sigint_stops_the_sweep_and_the_next_invocation_resumes(sweep_script, tmp_path):
    block = tmp_path / "block"
    block.touch()
    args = ["-M", "-F", "runs", "with", "lr=0.1,0.01,0.001,0.0001", f"block={block}", "together=1"]
    sweep = subprocess.Popen([sys.executable, str(sweep_script), *args], cwd=tmp_path, env=sweep_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not (tmp_path / "block.reached").exists():  # the third run is inside main
            assert sweep.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        sweep.send_signal(signal.SIGINT)
        stdout, stderr = sweep.communicate(timeout=HANG_GUARD)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 130, stdout + stderr
    statuses = [(r["config"]["lr"], r["status"]) for r in records(tmp_path / "runs")]
    assert statuses == [(0.1, "COMPLETED"), (0.01, "COMPLETED"), (0.001, "INTERRUPTED")]
    block.unlink()
    again = run_sweep(sweep_script, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 planned: 2 already completed, 2 to run (retrying 1 INTERRUPTED)" in again.stdout
    after = records(tmp_path / "runs")
    assert [(r["config"]["lr"], r["status"]) for r in after[3:]] == [(0.001, "COMPLETED"), (0.0001, "COMPLETED")]
    assert len({r["meta"]["sweep"]["id"] for r in after}) == 1
    forced = run_sweep(sweep_script, *args, "--rerun-all")
    assert "4 planned: all to run (--rerun-all)" in forced.stdout and len(records(tmp_path / "runs")) == 9


def test_sweep_refused_without_observer_and_bad_input_before_any_run(sweep_script, tmp_path):
    out = run_sweep(sweep_script, "-M", "with", "lr=0.1,0.01")
    assert out.returncode == 2 and "needs an observer" in out.stderr and "-u" in out.stderr
    unobserved = run_sweep(sweep_script, "-M", "-u", "with", "lr=0.1,0.01", "together=1")
    assert unobserved.returncode == 0 and "2 of 2 completed" in unobserved.stdout
    typo = run_sweep(sweep_script, "-M", "-F", "runs", "with", "lr=0.1,0.01", "modl=svm,forest")
    assert typo.returncode == 2 and "modl" in typo.stderr and "model" in typo.stderr
    assert not (tmp_path / "runs").exists()
    for args, message in [(["-j", "2", "-F", "runs", "with", "lr=1"], "add -M"),
                          (["-M", "-j", "0", "-F", "runs", "with", "lr=1,2"], "whole number"),
                          (["-M", "--launcher", "lokal", "-F", "runs", "with", "lr=1,2"], "did you mean 'local'"),
                          (["-M", "--launcher", "local:x=1", "-F", "runs", "with", "lr=1,2"], "no option 'x'"),
                          (["-M", "-i", "7", "-F", "runs", "with", "lr=1,2"], "--id"),
                          (["-M", "-D", "-F", "runs", "with", "lr=1,2"], "--pdb")]:
        refused = run_sweep(sweep_script, *args)
        assert refused.returncode == 2 and message in refused.stderr, (args, refused.stderr)


PLUGIN = """
import subprocess
from labrun.sweeps.launchers import Launcher

class SerialLauncher(Launcher):
    accepted_options = {"tag": "a word written before each command line"}

    def run(self, tasks, on_event, stop):
        for task in tasks:
            if stop.is_set():
                return
            with open("launched.txt", "a") as f:
                f.write(self.options.get("tag", "") + " " + " ".join(task.argv[2:]) + "\\n")
            on_event("started", task.index, None)
            with open(task.log, "wb") as log:
                code = subprocess.call(task.argv, cwd=task.cwd, env={**__import__("os").environ, **task.env},
                                       stdout=log, stderr=subprocess.STDOUT)
            on_event("ended", task.index, code)

    def interrupt(self):
        pass
"""


def test_a_launcher_from_another_package_plugs_in_through_entry_points(sweep_script, tmp_path):
    plugin = tmp_path / "plugin"
    (plugin / "seriallaunch-1.0.dist-info").mkdir(parents=True)
    (plugin / "seriallaunch-1.0.dist-info" / "METADATA").write_text("Name: seriallaunch\nVersion: 1.0\n")
    (plugin / "seriallaunch-1.0.dist-info" / "entry_points.txt").write_text(
        "[labrun.launchers]\nserial = seriallaunch:SerialLauncher\n")
    (plugin / "seriallaunch.py").write_text(PLUGIN)
    env = sweep_env(PYTHONPATH=str(plugin))
    out = subprocess.run([sys.executable, str(sweep_script), "-M", "--launcher", "serial:tag=hello", "-F", "runs",
                          "with", "lr=0.1,0.01", "together=1"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=HANG_GUARD)
    assert out.returncode == 0, out.stdout + out.stderr
    launched = (tmp_path / "launched.txt").read_text().splitlines()
    assert len(launched) == 2 and launched[0].startswith("hello --file-storage=runs with together=1 lr=0.1")
    assert [r["status"] for r in records(tmp_path / "runs")] == ["COMPLETED", "COMPLETED"]
    unknown = subprocess.run([sys.executable, str(sweep_script), "-M", "--launcher", "serial:tga=x", "-F", "runs",
                              "with", "lr=0.1,0.01"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=HANG_GUARD)
    assert unknown.returncode == 2 and "did you mean 'tag'" in unknown.stderr


# -- sweeps from Python ------------------------------------------------------------------------------------------
def test_ex_sweep_in_process_resumes(tmp_path):
    ex = Experiment("py")

    @ex.config
    def cfg():
        lr = 0.1
        model = "svm"

    @ex.main
    def main(lr, model, _run):
        if model == "bad":
            raise ValueError("bad")
        _run.log_scalar("loss", lr)
        return lr * 2

    store = str(tmp_path / "runs")
    runs = ex.sweep({"lr": [0.1, 0.2], "model": ["svm", "bad"]}, options={"-F": store})
    assert [(r.values, r.status, r.result) for r in runs] == [
        ({"lr": 0.1, "model": "svm"}, "COMPLETED", 0.2), ({"lr": 0.1, "model": "bad"}, "FAILED", None),
        ({"lr": 0.2, "model": "svm"}, "COMPLETED", 0.4), ({"lr": 0.2, "model": "bad"}, "FAILED", None)]
    assert runs[0].metrics == {"loss": 0.1}
    again = ex.sweep({"lr": [0.1, 0.2], "model": ["svm", "bad"]}, options={"-F": store})
    assert [r.skipped for r in again] == [True, False, True, False] and again[0].result == 0.2
    assert len(records(store)) == 6


def test_ex_sweep_with_two_jobs_starts_processes(tmp_path):
    (tmp_path / "pyexp.py").write_text(SWEEP_EXP.replace("@ex.automain", "@ex.main"))
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(f"""
import json
from pyexp import ex
runs = ex.sweep({{"lr": [0.1, 0.01]}}, jobs=2, config_updates={{"rendezvous": {str(rendezvous)!r}}},
                options={{"-F": "runs"}})
print("RESULT", json.dumps([[r.status, r.id, r.result] for r in runs]))
""")
    out = subprocess.run([sys.executable, str(driver)], cwd=tmp_path, env=sweep_env(), capture_output=True,
                         text=True, timeout=HANG_GUARD)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert [(status, value) for status, _id, value in result] == [("COMPLETED", 1.0), ("COMPLETED", 0.1)]
    assert sorted(run_id for _status, run_id, _value in result) == [1, 2]  # whichever started first took 1


# -- the decorator ------------------------------------------------------------------------------------------------
DECORATED = """
from labrun import experiment

def scope():
    width = 8                      # overrides the default
    hidden = width * 2             # derived: follows an update of width

def fast():
    epochs = 1

@experiment(name="dec", config=[scope, {"note": "from a dict"}, "extra.yaml"], named_configs=[fast])
def train(lr=0.1, epochs=10, width=4, hidden=0, note="", depth=1, _run=None):
    return {"lr": lr, "epochs": epochs, "width": width, "hidden": hidden, "note": note, "depth": depth}
"""


def test_decorator_config_and_named_configs_from_the_command_line(tmp_path):
    (tmp_path / "extra.yaml").write_text("depth: 3\n")
    path = tmp_path / "dec.py"
    path.write_text(DECORATED)
    out = run_sweep(path, "-F", "runs", "with", "fast", "width=16")
    assert out.returncode == 0, out.stderr
    [record] = records(tmp_path / "runs")
    assert record["result"] == {"lr": 0.1, "epochs": 1, "width": 16, "hidden": 32, "note": "from a dict", "depth": 3}
    swept = run_sweep(path, "-M", "-F", "runs", "with", "width=1,2")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert [r["result"]["hidden"] for r in records(tmp_path / "runs")[1:]] == [2, 4]


def test_decorator_from_python(tmp_path, monkeypatch):
    (tmp_path / "extra.yaml").write_text("depth: 3\n")
    (tmp_path / "dec.py").write_text(DECORATED)
    monkeypatch.syspath_prepend(str(tmp_path))
    from dec import train

    assert train(width=2) == {"lr": 0.1, "epochs": 10, "width": 2, "hidden": 4, "note": "from a dict", "depth": 3}
    run = train.run(config_updates={"lr": 0.5}, named_configs=["fast"], options={"-F": str(tmp_path / "runs")})
    assert run.status == "COMPLETED" and run.result["epochs"] == 1 and run.result["lr"] == 0.5
    assert records(tmp_path / "runs")[0]["config"]["hidden"] == 16
    with pytest.raises(TypeError, match="keywords"):
        train(0.5)
    swept = train.sweep({"width": [1, 2]}, named_configs=["fast"], options={"-F": str(tmp_path / "runs")})
    assert [(r.status, r.result["hidden"], r.result["epochs"]) for r in swept] == [("COMPLETED", 2, 1),
                                                                                   ("COMPLETED", 4, 1)]
    with pytest.raises(ConfigError, match="named_configs"):
        experiment(named_configs=["not a function"])(lambda x=1: x)
    tiny = experiment(named_configs={"tiny": {"width": 1}})(lambda width=4: width)
    assert tiny.run(named_configs=["tiny"]).result == 1 and tiny(width=5) == 5


# -- notebooks ----------------------------------------------------------------------------------------------------
NOTEBOOK_CELLS = [
    """import signal
from labrun import Experiment
handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
ex = Experiment("nb")

@ex.config
def cfg():
    lr = 0.1
    double = lr * 2

@ex.main
def main(lr, double, _run):
    print("printed inside the run", lr)
    _run.log_scalar("loss", lr)
    return double""",
    "first = ex.run(config_updates={'lr': 0.5}, options={'-F': 'runs'})\nprint('first', first.status, first.result)",
    "second = ex.run(options={'-F': 'runs'})\nprint('second', second.status, second.result)\n"
    "print('handlers kept', handlers == (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))",
]


def test_notebook_runs_in_a_real_kernel(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    path = tmp_path / "study.ipynb"
    nbformat.write(notebook, str(path))
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))  # what Jupyter Server tells a kernel it starts
    client = nbclient.NotebookClient(notebook, timeout=HANG_GUARD, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    shown = ["".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells]
    assert "printed inside the run 0.5" in shown[1] and "first COMPLETED 1.0" in shown[1]  # the display works
    assert "second COMPLETED 0.2" in shown[2] and "handlers kept True" in shown[2]
    first, second = records(tmp_path / "runs")
    sources = dict(open_store(str(tmp_path / "runs")).run(first["id"]).record["experiment"]["sources"])
    assert set(sources) == {"notebook_cells.py", "study.ipynb"}
    cells = (tmp_path / "runs" / sources["notebook_cells.py"]).read_text()
    assert "def cfg():" in cells and "ex.run(config_updates={'lr': 0.5}" in cells
    assert (tmp_path / "runs" / "1" / "cout.txt").read_text() == "printed inside the run 0.5\n"
    assert second["status"] == "COMPLETED"
