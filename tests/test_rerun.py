"""`labrun rerun`: the same command, config and seed, from the exact code the run had."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from gitrepo import git, make_repo

# Deterministic given its seed; OFFSET is what the tests change in the working tree.
EXPERIMENT = """
import random
from labrun import Experiment
import helper

ex = Experiment("det")
OFFSET = 1

@ex.config
def config():
    scale = 2.0

@ex.automain
def main(scale, _run):
    value = helper.combine(random.random(), scale) + OFFSET
    for step in range(5):
        _run.log_scalar("value", value * step, step)
    return value
"""


def labrun(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "labrun", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def run_json(store, run_id):
    return json.loads((store / str(run_id) / "run.json").read_text())


def record_run(repo, *args):
    out = subprocess.run([sys.executable, "exp.py", "-F", "runs", *args], cwd=repo, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return run_json(repo / "runs", max(int(p.name) for p in (repo / "runs").iterdir() if p.name.isdigit()))


def dirty_repo(tmp_path):
    """A repository whose recorded run has an uncommitted change and an untracked module."""
    repo = make_repo(tmp_path / "proj", {"exp.py": EXPERIMENT, ".gitignore": "runs/\n"})
    (repo / "exp.py").write_text(EXPERIMENT.replace("OFFSET = 1", "OFFSET = 100"))  # uncommitted
    (repo / "helper.py").write_text("def combine(x, scale):\n    return x * scale\n")  # untracked
    return repo


def test_rerun_of_a_run_with_uncommitted_changes_reproduces_it_and_check_passes(tmp_path):
    repo = dirty_repo(tmp_path)
    original = record_run(repo, "with", "scale=3.0")
    status_before = git(repo, "status", "--porcelain")
    assert original["experiment"]["repositories"][0]["dirty"] is True
    assert original["result"] > 100
    out = labrun("rerun", "runs/1", "--check", cwd=repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "plus the recorded uncommitted changes" in out.stdout and "check passed" in out.stdout
    new = run_json(repo / "runs", 2)
    assert new["result"] == original["result"]  # same code, config (scale=3.0) and seed
    config = json.loads((repo / "runs" / "2" / "config.json").read_text())
    assert config == json.loads((repo / "runs" / "1" / "config.json").read_text()) and config["scale"] == 3.0
    assert new["meta"]["rerun_of"] == {"run_id": 1, "store": str(repo / "runs"), "uid": original["uid"]}
    assert git(repo, "status", "--porcelain") == status_before


def test_rerun_runs_the_recorded_code_after_the_working_tree_changed(tmp_path):
    repo = dirty_repo(tmp_path)
    original = record_run(repo)
    # the working tree moves on: the change is committed, then changed again, and the helper rewritten
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "later work")
    (repo / "exp.py").write_text(EXPERIMENT.replace("OFFSET = 1", "OFFSET = 5000"))
    (repo / "helper.py").write_text("def combine(x, scale):\n    return -1.0\n")
    before = {p.name: p.read_text() for p in repo.glob("*.py")}
    out = labrun("rerun", "runs/1", "--check", cwd=repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert run_json(repo / "runs", 2)["result"] == original["result"]
    assert "git " in out.stdout and "commit" in out.stdout  # the drift names the commit that moved
    assert {p.name: p.read_text() for p in repo.glob("*.py")} == before  # the working tree is untouched
    # --here runs the working tree as it is now, and --check says it differs
    out = labrun("rerun", "runs/1", "--here", "--check", cwd=repo)
    assert out.returncode == 1
    assert "check failed" in out.stderr and "result:" in out.stderr and "metric value" in out.stderr
    assert run_json(repo / "runs", 3)["result"] == 4999.0


def plain_folder(tmp_path):
    """The experiment and its helper module in a folder outside any git repository."""
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "exp.py").write_text(EXPERIMENT)
    (folder / "helper.py").write_text("def combine(x, scale):\n    return x * scale\n")
    return folder


def test_rerun_without_git_uses_the_stored_sources(tmp_path):
    folder = plain_folder(tmp_path)
    original = record_run(folder)
    (folder / "exp.py").write_text(EXPERIMENT.replace("OFFSET = 1", "OFFSET = 7"))
    out = labrun("rerun", str(folder / "runs"), "1", "--check", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "the source files stored with the run" in out.stdout
    assert run_json(folder / "runs", 2)["result"] == original["result"]


def test_dry_run_prints_the_drift_and_command_and_runs_nothing(tmp_path):
    repo = dirty_repo(tmp_path)
    record_run(repo)
    record = run_json(repo / "runs", 1)
    env = record["environment"]
    env["python"]["version"] = "2.7.18"
    env["distributions"] = [d if not d.lower().startswith("pyyaml==") else "PyYAML==0.1"
                            for d in env["distributions"]] + ["gone-package==1.0"]
    (repo / "runs" / "1" / "run.json").write_text(json.dumps(record))
    out = labrun("rerun", "runs/1", "--dry-run", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert "python: 2.7.18 -> " in out.stdout
    assert "pyyaml 0.1 -> " in out.stdout.lower()
    assert "packages removed: gone-package==1.0" in out.stdout
    assert "exp.py main with " in out.stdout and f"-F {repo / 'runs'}" in out.stdout
    assert sorted(p.name for p in (repo / "runs").iterdir()) == ["1", "_sources"]


def test_rerun_errors_name_the_problem(tmp_path):
    repo = dirty_repo(tmp_path)
    record_run(repo)
    out = labrun("rerun", "runs", "11", cwd=repo)
    assert out.returncode == 2 and "no run '11' in the file store" in out.stderr and "'1'" in out.stderr
    out = labrun("rerun", "nowhere", "1", cwd=repo)
    assert out.returncode == 2 and "cannot read the file store 'nowhere': no such folder" in out.stderr
    (repo / "runs" / "1" / "config.json").write_text("{broken")
    out = labrun("rerun", "runs/1", cwd=repo)
    assert out.returncode == 2 and "cannot read" in out.stderr and "config.json" in out.stderr


def test_rerun_refuses_when_neither_the_commit_nor_the_sources_are_there(tmp_path):
    repo = dirty_repo(tmp_path)
    record_run(repo)
    record = run_json(repo / "runs", 1)
    record["experiment"]["repositories"][0]["commit"] = "0" * 40  # a commit this repository never had
    (repo / "runs" / "1" / "run.json").write_text(json.dumps(record))
    shutil.rmtree(repo / "runs" / "_sources")
    out = labrun("rerun", "runs/1", cwd=repo)
    assert out.returncode == 2
    assert "its sources were not stored and commit 000000000000 is not in the repository" in out.stderr
    assert "--here" in out.stderr


def test_reading_runs_back_never_imports_the_run_machinery(tmp_path):
    repo = dirty_repo(tmp_path)
    record_run(repo)
    code = ("import sys; from labrun.cli.tool import main; status = main(['rerun', 'runs/1', '--dry-run']); "
            "bad = [m for m in ('labrun.run', 'labrun.experiment', 'labrun.recording.journal', "
            "'labrun.recording.dispatcher') "
            "if m in sys.modules]; print('LOADED', bad); sys.exit(status)")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout


def test_reproducible_example_reruns_with_check(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "reproducible.py"), "-F", str(tmp_path / "runs"),
                          "with", "noise=0.3"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = labrun("rerun", str(tmp_path / "runs" / "1"), "--check", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "final values of 2 metrics" in out.stdout
    assert Path(tmp_path / "runs" / "2" / "run.json").exists()


def test_rerun_refuses_code_changed_in_the_store_after_the_run(tmp_path):
    folder = plain_folder(tmp_path)
    record = record_run(folder)
    stored = folder / "runs" / dict(record["experiment"]["sources"])["helper.py"]
    stored.write_text("import os\ndef combine(x, scale):\n    os.system('echo pwned')\n    return 0\n")
    out = labrun("rerun", str(folder / "runs"), "1", "--dry-run", cwd=tmp_path)
    assert out.returncode == 2 and "source file helper.py was changed in the store after the run" in out.stderr
    assert "pwned" not in out.stdout

    repo = dirty_repo(tmp_path)
    record_run(repo)
    recorded = run_json(repo / "runs", 1)
    assert recorded["experiment"]["repositories"][0]["diff_md5"]
    for field, change in (("diff", lambda r: r.update(diff=r["diff"].replace("OFFSET = 100", "OFFSET = 666"))),
                          ("untracked", lambda r: r["untracked"].update({"helper.py": "def combine(x, s): 0\n"}))):
        changed = json.loads(json.dumps(recorded))
        change(changed["experiment"]["repositories"][0])
        (repo / "runs" / "1" / "run.json").write_text(json.dumps(changed))
        out = labrun("rerun", "runs/1", cwd=repo)
        assert out.returncode == 2, (field, out.stdout, out.stderr)
        assert "was changed in the store after the run" in out.stderr and "refusing to run it" in out.stderr
    help_text = labrun("--help", cwd=tmp_path).stdout
    assert "EXECUTES CODE TAKEN FROM THE STORE" in help_text and "--dry-run shows what" in help_text


def test_rerun_from_an_mlflow_store(tmp_path):
    folder = plain_folder(tmp_path)
    store = f"mlflow+sqlite:///{tmp_path / 'mlflow.db'}"
    out = subprocess.run([sys.executable, "exp.py", "-o", store], cwd=folder, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.removeprefix("mlflow+"))
    (original,) = client.search_runs([client.get_experiment_by_name("det").experiment_id])
    (folder / "exp.py").write_text(EXPERIMENT.replace("OFFSET = 1", "OFFSET = 5"))  # the tree moves on
    rerun = labrun("rerun", store, original.info.run_id, "--check", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "the source files stored with the run" in rerun.stdout and "check passed" in rerun.stdout
    runs = client.search_runs([client.get_experiment_by_name("det").experiment_id])
    assert len(runs) == 2 and len({run.data.metrics["value"] for run in runs}) == 1
    shown = labrun("show", store, original.info.run_id, cwd=tmp_path)
    assert f"Run it again: labrun rerun {store} {original.info.run_id}" in shown.stdout, shown.stdout
