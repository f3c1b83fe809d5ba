"""What each run records to be re-created: sources, git state, environment, host, GPUs, system metrics."""

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys

import pytest

from gitrepo import git, make_repo
from labrun.provenance import environment, git as gitstate, host
from labrun.provenance.gather import gather_provenance

EXPERIMENT = """
from labrun import Experiment
import helper

ex = Experiment("prov")

@ex.config
def config():
    n = 3

@ex.automain
def main(n, _run):
    import late_module            # imported only while the run goes on
    _run.log_scalar("x", helper.twice(n))
    return late_module.VALUE + n
"""


def run_json(folder, run_id=1):
    return json.loads((folder / str(run_id) / "run.json").read_text())


# -- git, per repository ----------------------------------------------------------------------------------
def test_clean_repository_records_commit_branch_and_remote_without_credentials(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "A = 1\n"})
    git(repo, "remote", "add", "origin", "https://alice:ghp_secret@github.com/alice/proj.git")
    state = gitstate.repository_state(str(repo))
    assert state["commit"] == git(repo, "rev-parse", "HEAD")
    assert state["branch"] == "main"
    assert state["dirty"] is False and "diff" not in state
    assert state["url"] == "https://github.com/alice/proj.git"


def test_dirty_repository_records_a_diff_that_applies_to_the_commit(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "A = 1\n", "b.py": "B = 1\n"})
    (repo / "a.py").write_text("A = 2\n")
    state = gitstate.repository_state(str(repo))
    assert state["dirty"] is True
    assert "-A = 1" in state["diff"] and "+A = 2" in state["diff"]
    # the diff is exactly what turns the commit into the working tree
    git(repo, "stash", "-q")
    assert (repo / "a.py").read_text() == "A = 1\n"
    subprocess.run(["git", "apply", "-"], cwd=repo, input=state["diff"], text=True, check=True)
    assert (repo / "a.py").read_text() == "A = 2\n"


def test_untracked_files_make_the_tree_dirty_and_sources_among_them_are_stored(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "A = 1\n"})
    (repo / "new_module.py").write_text("NEW = True\n")
    (repo / "weights.bin").write_bytes(b"\0" * 100)
    state = gitstate.repository_state(str(repo))
    assert state["dirty"] is True
    assert state["diff"] == ""
    assert state["untracked"] == {"new_module.py": "NEW = True\n"}
    assert state["untracked_skipped"] == ["weights.bin"]
    assert "capped" not in state


def test_changes_over_the_cap_are_left_out_and_the_cap_is_recorded(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "A = 1\n"})
    (repo / "a.py").write_text("A = 2\n" * 500)
    state = gitstate.repository_state(str(repo), cap=1000)
    assert state["diff"] is None
    assert state["capped"]["cap_bytes"] == 1000 and state["capped"]["diff_bytes"] > 1000


def test_detached_head_records_the_commit_and_no_branch(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "A = 1\n"})
    commit = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    state = gitstate.repository_state(str(repo))
    assert state["commit"] == commit and state["branch"] is None and state["dirty"] is False


def test_empty_repository_has_no_commit_and_its_files_are_untracked(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a.py": "A = 1\n"}, commit=False)
    state = gitstate.repository_state(str(repo))
    assert state["commit"] is None and state["branch"] == "main"
    assert state["dirty"] is True and state["untracked"] == {"a.py": "A = 1\n"}


def test_no_repository_records_no_repositories(tmp_path):
    (tmp_path / "exp.py").write_text("x = 1\n")
    assert gitstate.repositories_of([str(tmp_path / "exp.py")]) == []
    found = gather_provenance(str(tmp_path), str(tmp_path / "exp.py"), [], save_git=True)
    assert found["repositories"] == []
    assert [s["path"] for s in found["sources"]] == ["exp.py"]


@pytest.mark.parametrize("packed", [False, True])
def test_without_a_git_binary_commit_and_branch_are_read_from_the_repository(tmp_path, monkeypatch, packed):
    repo = make_repo(tmp_path / "repo", {"a.py": "A = 1\n"})
    git(repo, "remote", "add", "origin", "https://bob:pw@example.org/r.git")
    if packed:
        git(repo, "pack-refs", "--all")
    commit = git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no git on the PATH
    state = gitstate.repository_state(str(repo))
    assert state["git_binary"] is False
    assert state["commit"] == commit and state["branch"] == "main"
    assert state["dirty"] is None  # unknown without git
    assert state["url"] == "https://example.org/r.git"


def test_enforce_clean_refuses_a_dirty_tree_before_anything_is_recorded(tmp_path, script):
    exp = script("from labrun import Experiment\nex = Experiment('e')\n@ex.automain\ndef main():\n    return 1\n")
    make_repo(tmp_path, {"exp.py": exp.path.read_text()})
    (tmp_path / "exp.py").write_text(exp.path.read_text() + "# changed\n")
    out = exp.run("-e", "-F", "runs")
    assert out.returncode == 2
    assert "--enforce-clean: uncommitted changes in" in out.stderr and "commit or stash them" in out.stderr
    assert not (tmp_path / "runs").exists()
    git(tmp_path, "commit", "-qam", "commit the change")
    out = exp.run("-e", "-F", "runs")
    assert out.returncode == 0, out.stderr
    assert run_json(tmp_path / "runs")["experiment"]["repositories"][0]["dirty"] is False


# -- sources ------------------------------------------------------------------------------------------------
def test_run_records_main_file_and_local_modules_also_those_imported_during_the_run(tmp_path, script):
    exp = script(EXPERIMENT)
    (tmp_path / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    (tmp_path / "late_module.py").write_text("VALUE = 10\n")
    out = exp.run("-F", "runs")
    assert out.returncode == 0, out.stderr
    record = run_json(tmp_path / "runs")
    sources = dict(record["experiment"]["sources"])
    assert set(sources) == {"exp.py", "helper.py", "late_module.py"}
    for rel, stored in sources.items():
        content = (tmp_path / rel).read_bytes()
        assert (tmp_path / "runs" / stored).read_bytes() == content
        import hashlib
        assert stored == f"_sources/{rel[:-3]}_{hashlib.md5(content).hexdigest()}.py"
    # installed packages are dependencies, not sources
    assert not any("site-packages" in s for s in sources)
    # a second run of the same code stores nothing new
    assert exp.run("-F", "runs").returncode == 0
    assert len(os.listdir(tmp_path / "runs" / "_sources")) == 3


def test_add_source_file_is_recorded(tmp_path, script):
    (tmp_path / "notes.yaml").write_text("k: 1\n")
    exp = script("from labrun import Experiment\nex = Experiment('e')\nex.add_source_file('notes.yaml')\n"
                 "@ex.automain\ndef main():\n    return 1\n")
    assert exp.run("-F", "runs").returncode == 0
    assert "notes.yaml" in dict(run_json(tmp_path / "runs")["experiment"]["sources"])


def test_interactive_experiment_without_a_main_file_runs_and_is_recorded(tmp_path):
    code = ("from labrun import Experiment\nex = Experiment('repl')\n"
            "ex.main(lambda: 5)\nrun = ex.run(options={'--file-storage': 'runs'})\nprint(run.result)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    record = run_json(tmp_path / "runs")
    assert record["experiment"]["mainfile"] is None and record["status"] == "COMPLETED"


# -- environment and host -------------------------------------------------------------------------------------
def test_environment_lists_python_installed_distributions_and_imported_packages(tmp_path, script):
    exp = script("import yaml\nfrom labrun import Experiment\nex = Experiment('e')\n"
                 "@ex.automain\ndef main():\n    return 1\n")
    assert exp.run("-F", "runs").returncode == 0
    record = run_json(tmp_path / "runs")
    env = record["environment"]
    assert env["python"] == {"version": platform.python_version(),
                             "implementation": platform.python_implementation(), "executable": sys.executable}
    assert env["virtualenv"] == sys.prefix
    pyyaml = importlib.metadata.version("pyyaml")
    assert f"PyYAML=={pyyaml}" in env["distributions"] or f"pyyaml=={pyyaml}" in env["distributions"]
    # Sacred's `dependencies`: what the experiment imported, with versions, for Omniboard
    deps = record["experiment"]["dependencies"]
    assert any(d.lower() == f"pyyaml=={pyyaml}" for d in deps)
    assert not any(d.startswith(("json==", "os==")) for d in deps)


def test_conda_packages_are_read_from_conda_meta(tmp_path):
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    (meta / "numpy-1.26.4-py311h64a7726_0.json").write_text("{}")
    (meta / "python-3.11.7-hab00c5b_1_cpython.json").write_text("{}")
    (meta / "history").write_text("")
    assert environment.conda_packages(str(tmp_path)) == {"numpy": "1.26.4", "python": "3.11.7"}


def test_host_records_machine_facts_and_only_allow_listed_environment_variables(monkeypatch):
    monkeypatch.setenv("MY_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("DATA_URL", "postgres://user:pw@db/x")
    monkeypatch.setenv("LABRUN_RECORD_ENV", "DATA_*")
    info = host.host_info(["SLURM_JOB_ID"])
    assert info["hostname"] == os.uname().nodename
    assert info["cpu_count"] == os.cpu_count() and info["memory_total"] > 0 and info["cpu"]
    assert info["ENV"] == {"DATA_URL": "postgres://user:***@db/x"}
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert host.host_info(["SLURM_JOB_ID"])["ENV"]["SLURM_JOB_ID"] == "42"


@pytest.fixture
def driver_present(monkeypatch, tmp_path):
    """Make labrun look for GPUs as on a machine with an NVIDIA driver (it skips pynvml where there is none)."""
    monkeypatch.setattr(host, "_NVIDIA_DRIVER_SIGNS", (str(tmp_path),))


def test_gpu_list_is_empty_without_pynvml(monkeypatch, driver_present):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    info = host.gpu_info()
    assert info["gpus"] == [] and info["driver_version"] is None


def test_gpu_list_is_empty_when_nvml_fails(monkeypatch, driver_present):
    pynvml = pytest.importorskip("pynvml")
    # without an NVIDIA driver (CI), the real library fails to initialise
    try:
        pynvml.nvmlInit()
        has_driver = True
    except pynvml.NVMLError:
        has_driver = False
    if not has_driver:
        assert host.gpu_info()["gpus"] == []

    # a driver that initialises and then fails on the device queries (a lost GPU)
    def lost(*args):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlSystemGetDriverVersion", lambda: "550.54")
    monkeypatch.setattr(pynvml, "nvmlSystemGetCudaDriverVersion", lambda: 12040)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lost)
    info = host.gpu_info()
    assert info["gpus"] == [] and info["driver_version"] == "550.54"  # the driver was reached, then failed


def test_gpus_are_listed_when_a_driver_is_present():
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA driver on this machine (the GPU machine runs this test)")
    info = host.gpu_info()
    assert info["driver_version"] and info["cuda_version"]
    assert len(info["gpus"]) == pynvml.nvmlDeviceGetCount() > 0
    first = info["gpus"][0]
    assert first["model"] and first["total_memory"] > 0 and first["uuid"].startswith("GPU-")


# -- system metrics -----------------------------------------------------------------------------------------
def test_system_metrics_are_logged_at_every_heartbeat_under_the_reserved_prefix(tmp_path, script):
    exp = script("import time\nfrom labrun import Experiment\nex = Experiment('e')\n"
                 "@ex.automain\ndef main():\n    time.sleep(0.8)\n")
    assert exp.run("-F", "runs", "-b", "0.2").returncode == 0
    metrics = json.loads((tmp_path / "runs" / "1" / "metrics.json").read_text())
    rss = metrics["system/rss_mb"]
    assert len(rss["values"]) >= 3 and rss["steps"][:3] == [0, 1, 2]
    assert all(5 < v < 10_000 for v in rss["values"])
    assert len(metrics["system/cpu_percent"]["values"]) == len(rss["values"])


def test_user_metrics_cannot_use_the_reserved_prefix(tmp_path, script):
    exp = script("from labrun import Experiment\nex = Experiment('e')\n"
                 "@ex.automain\ndef main(_run):\n    _run.log_scalar('system/loss', 1.0)\n")
    out = exp.run("-F", "runs")
    assert out.returncode == 1
    assert "reserved for the system metrics" in out.stderr and "'loss'" in out.stderr


# -- commands and cost -------------------------------------------------------------------------------------
def test_print_dependencies_and_print_env_show_what_would_be_recorded(tmp_path, script):
    exp = script("import yaml\nfrom labrun import Experiment\nex = Experiment('e')\n"
                 "@ex.automain\ndef main():\n    return 1\n")
    make_repo(tmp_path, {"exp.py": exp.path.read_text()})
    out = exp.run("print_dependencies")
    assert out.returncode == 0, out.stderr
    assert "pyyaml==" in out.stdout.lower() and "exp.py" in out.stdout
    assert f"{git(tmp_path, 'rev-parse', 'HEAD')} on main, clean" in out.stdout
    out = exp.run("print_env")
    shown = json.loads(out.stdout)
    assert shown["environment"]["python"]["executable"] == sys.executable
    assert shown["host"]["hostname"] == os.uname().nodename
    assert not (tmp_path / "runs").exists()


def test_nothing_is_captured_for_help_print_config_or_unobserved_runs(tmp_path, script):
    exp = script("import sys\nfrom labrun import Experiment\nex = Experiment('e')\n@ex.main\ndef main():\n"
                 "    return 1\nex.run_commandline()\n"
                 "print('CAPTURED' if 'labrun.provenance.gather' in sys.modules else 'NOTHING')\n")
    for args in (["--help"], ["print_config"], ["-u"], []):
        out = exp.run(*args)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().endswith("NOTHING"), (args, out.stdout)
    assert exp.run("-F", "runs").stdout.strip().endswith("CAPTURED")


def test_capture_finds_every_repository_once(tmp_path):
    a = make_repo(tmp_path / "a", {"x.py": "X = 1\n"})
    b = make_repo(tmp_path / "b", {"y.py": "Y = 1\n"})
    roots = gitstate.repositories_of([str(a / "x.py"), str(b / "y.py"), str(a / "x.py")])
    assert roots == [str(a), str(b)]
    assert shutil.which("git")


def test_host_facts_and_system_metrics_without_proc_use_psutil(monkeypatch, tmp_path):
    """macOS and Windows have no /proc: the same facts come from psutil (forced here by hiding /proc)."""
    import psutil

    from labrun.provenance import host, system_metrics

    monkeypatch.setattr(host, "_CPUINFO", str(tmp_path / "no-cpuinfo"))
    monkeypatch.setattr(system_metrics, "_STATM", str(tmp_path / "no-statm"))
    facts = host.host_info()
    assert facts["cpu_count_physical"] == psutil.cpu_count(logical=False)
    assert facts["memory_total"] > 0 and facts["cpu"]
    sampler = system_metrics.SystemSampler()
    assert sampler._process is not None  # psutil's reading, not /proc's
    sample = sampler.sample()
    rss = psutil.Process().memory_info().rss / (1 << 20)
    assert 0.5 * rss < sample["system/rss_mb"] < 2 * rss and sample["system/cpu_percent"] >= 0
