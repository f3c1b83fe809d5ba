"""What a newcomer trips over: defaults, messages that say what did not happen, system metrics in UIs."""

import json
import os
import subprocess
import sys

import pytest
from gitrepo import make_repo

HANG_GUARD = 300

SCRIPT = """
from labrun import Experiment

ex = Experiment("newcomer")

@ex.config
def cfg():
    lr = 0.1

@ex.automain
def main(lr, _run):
    for step in range(3):
        _run.log_scalar("loss", lr / (step + 1))
    return lr
"""


def run_script(folder, *args, env=None):
    return subprocess.run([sys.executable, "exp.py", *args], cwd=folder, capture_output=True, text=True,
                          timeout=HANG_GUARD, env={**os.environ, "NO_COLOR": "1", **(env or {})})


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project" / "src"
    folder.mkdir(parents=True)
    (folder / "exp.py").write_text(SCRIPT)
    return folder


def test_project_default_observers_from_pyproject_and_the_environment(project, tmp_path):
    out = run_script(project)
    assert "--mlflow URI, --tensorboard LOGDIR" in out.stderr and "[tool.labrun]" in out.stderr  # every way
    (project.parent / "pyproject.toml").write_text('[tool.labrun]\nobservers = ["file://runs"]\n')
    assert run_script(project).returncode == 0
    assert (project.parent / "runs" / "1" / "run.json").exists()  # beside pyproject.toml, not in src/
    env = {"LABRUN_OBSERVERS": f"file://{tmp_path / 'env_runs'}"}
    assert run_script(project, env=env).returncode == 0
    assert (tmp_path / "env_runs" / "1" / "run.json").exists() and not (project.parent / "runs" / "2").exists()
    assert run_script(project, "-F", str(tmp_path / "cli_runs"), env=env).returncode == 0  # the command line wins
    assert (tmp_path / "cli_runs" / "1").exists() and not (tmp_path / "env_runs" / "2").exists()
    unobserved = run_script(project, "-u")
    assert unobserved.returncode == 0 and not (project.parent / "runs" / "2").exists()


def test_no_system_metrics_switch(project):
    assert run_script(project, "-F", "runs", "--no-system-metrics").returncode == 0
    assert run_script(project, "-F", "runs", env={"LABRUN_SYSTEM_METRICS": "0"}).returncode == 0
    assert run_script(project, "-F", "runs").returncode == 0
    names = [set(json.loads((project / "runs" / str(i) / "metrics.json").read_text())) for i in (1, 2, 3)]
    assert names[0] == names[1] == {"loss"}
    assert "system/cpu_percent" in names[2]


def test_system_metrics_stay_out_of_the_collection_omniboard_plots(project, mongo_url):
    import pymongo

    out = run_script(project, "-m", mongo_url)
    assert out.returncode == 0, out.stderr
    client = pymongo.MongoClient(mongo_url)
    try:
        db = client.get_default_database()
        assert {d["name"] for d in db.metrics.find({"run_id": 1})} == {"loss"}
        assert {d["name"] for d in db.system_metrics.find({"run_id": 1})} >= {"system/cpu_percent", "system/rss_mb"}
        run = db.runs.find_one({"_id": 1})
        assert "system/cpu_percent" in run["labrun"]["metrics"]  # the summary, for labrun ls and show
        assert [m["name"] for m in run["info"]["metrics"]] == ["loss"]  # what Omniboard lists and plots
    finally:
        client.close()
    from labrun import open_store

    assert "system/rss_mb" in open_store(mongo_url).run(1).metrics  # labrun's reader still finds them


def test_enforce_clean_and_queue_say_only_what_happened(tmp_path):
    repo = make_repo(tmp_path / "repo", {"exp.py": SCRIPT})
    (repo / "notes.py").write_text("x = 1\n")  # untracked only
    out = run_script(repo, "-F", "runs", "-e")
    assert out.returncode == 2
    assert "untracked files in" in out.stderr and "uncommitted changes" not in out.stderr
    assert "Running command" not in out.stderr and "Failed after" not in out.stderr
    queued = run_script(repo, "-F", "runs", "-q")
    assert queued.returncode == 0
    assert "Queuing-up command 'main'" in queued.stderr and 'Queued-up run with ID "1"' in queued.stderr
    assert "Running command" not in queued.stderr and "Completed after" not in queued.stderr


def test_rerun_and_show_name_what_exists(project):
    assert run_script(project, "-F", "runs").returncode == 0
    for command in ("rerun", "show"):
        out = subprocess.run([sys.executable, "-m", "labrun", command, "runs/9"], cwd=project, capture_output=True,
                             text=True, timeout=HANG_GUARD)
        assert out.returncode == 2 and "no run '9'" in out.stderr and "runs there: 1" in out.stderr
    out = subprocess.run([sys.executable, "-m", "labrun", "rerun", "runz/1"], cwd=project, capture_output=True,
                         text=True, timeout=HANG_GUARD)
    assert out.returncode == 2 and "(did you mean 'runs'?)" in out.stderr


def test_an_ingredient_command_does_not_warn_about_observers(tmp_path):
    folder = tmp_path / "ing"
    folder.mkdir()
    (folder / "exp.py").write_text(
        "from labrun import Experiment, Ingredient\n"
        "data = Ingredient('data')\n"
        "@data.config\n"
        "def cfg():\n    path = 'x.csv'\n"
        "@data.command\n"
        "def describe(path):\n    print('rows of', path)\n"
        "ex = Experiment('ing', ingredients=[data])\n"
        "@ex.automain\n"
        "def main():\n    return 1\n")
    out = run_script(folder, "data.describe")
    assert out.returncode == 0 and "rows of x.csv" in out.stdout
    assert "No observers" not in out.stderr and "add an observer" not in out.stderr
    main = run_script(folder)
    assert "No observers have been added to this run" in main.stderr  # the experiment's own commands still do
