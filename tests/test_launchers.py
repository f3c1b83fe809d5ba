"""Sweeps on real engines: a Ray head started here (tests/ray_head.py), and the launchers' input checks.

The Slurm tests are in test_slurm_launcher.py (marked ``slurm``: they start a single-node cluster).
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from gitrepo import git, make_repo
from labrun.errors import CommandLineError
from labrun.readback import open_store
from labrun.sweeps.launchers import SweepSetup, create_launcher
from labrun.sweeps.remote import check_stores_reachable, snapshot_code

HANG_GUARD = 300  # seconds: only a guard against a hang, never a speed requirement

ENGINE_EXP = """
import os, time
from labrun import Experiment

ex = Experiment("engine")

@ex.config
def cfg():
    x = 1
    hold = ""  # a path: the run writes "PID PARENT_PID SLURM_TASK" to HOLD-X, then waits for HOLD.off

@ex.automain
def main(x, hold, _run):
    if x < 0:
        raise ValueError("x must not be negative")
    if hold and not os.path.exists(hold + ".off"):
        task = "_".join(os.environ.get(k, "") for k in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"))
        with open(f"{hold}-{x}.tmp", "w") as f:
            f.write(f"{os.getpid()} {os.getppid()} {task}")
        os.replace(f"{hold}-{x}.tmp", f"{hold}-{x}")
        deadline = time.monotonic() + 300
        while not os.path.exists(hold + ".off"):
            if time.monotonic() > deadline:
                raise TimeoutError("hang guard")
            time.sleep(0.1)
    _run.log_scalar("y", x * VERSION)
    return x * VERSION
"""


def write_experiment(folder, version=1):
    path = folder / "exp.py"
    path.write_text(ENGINE_EXP.replace("VERSION", str(version)))
    return path


@pytest.fixture(scope="module")
def ray_head():
    from ray_head import RayHead

    head = RayHead().start()
    try:
        yield head
    finally:
        head.stop()


def sweep(path, *args, env=None):
    from ray_head import RAY_ENV

    return subprocess.Popen([sys.executable, str(path), *args], cwd=path.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NO_COLOR": "1", **RAY_ENV, **(env or {})})


def finish(process):
    out, _ = process.communicate(timeout=HANG_GUARD)
    return process.returncode, out


def wait_for_file(path, process):
    deadline = time.monotonic() + HANG_GUARD
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the sweep ended before {path.name} appeared:\n{process.stdout.read()}")
        assert time.monotonic() < deadline, f"hang guard: {path} never appeared"
        time.sleep(0.1)
    return path.read_text().split()


def test_ray_sweep_records_every_run_in_the_file_store_and_mongodb(ray_head, tmp_path, mongo_url):
    project = make_repo(tmp_path / "project", {"exp.py": ENGINE_EXP.replace("VERSION", "2"),
                                               ".gitignore": "runs/\n"})
    path = project / "exp.py"
    code, out = finish(sweep(path, "-M", "-j", "2", "-F", "runs", "-m", mongo_url, "--launcher",
                             f"ray:address={ray_head.address}", "with", "x=1,2,3,4"))
    assert code == 0, out
    assert "4 of 4 completed" in out
    head = git(project, "rev-parse", "HEAD")
    for store in (str(project / "runs"), mongo_url):
        runs = sorted(open_store(store).all_runs(), key=lambda r: r.config["x"])
        assert [(r.status, r.result) for r in runs] == [("COMPLETED", 2 * x) for x in (1, 2, 3, 4)], store
        for run in runs:
            launcher = run.meta["launcher"]
            assert launcher["name"] == "ray" and len(launcher["node_id"]) == 56 and launcher["task_id"], launcher
            assert run.meta["sweep"]["size"] == 4
            # the run's code came from the snapshot, yet its git state is the working tree's at submission
            [repository] = run.record["experiment"]["repositories"]
            assert repository["commit"] == head and repository["dirty"] is False
            assert list(run.sources) == ["exp.py"]
        assert len({r.meta["launcher"]["task_id"] for r in runs}) == 4


def test_ray_client_address_runs_the_sweep_from_outside_the_cluster(ray_head, tmp_path):
    path = write_experiment(tmp_path, version=3)
    code, out = finish(sweep(path, "-M", "-F", "runs", "-j", "2", "--launcher",
                             f"ray:address={ray_head.client_address},num_cpus=0.5", "with", "x=1,2"))
    assert code == 0, out
    runs = sorted(open_store(str(tmp_path / "runs")).all_runs(), key=lambda r: r.config["x"])
    assert [(r.status, r.result, r.meta["launcher"]["name"]) for r in runs] == [("COMPLETED", 3, "ray"),
                                                                                ("COMPLETED", 6, "ray")]


def test_ray_without_a_shared_filesystem_runs_in_the_uploaded_copy_and_refuses_a_folder_store(
        ray_head, tmp_path, mongo_url):
    path = write_experiment(tmp_path)
    launcher = f"ray:address={ray_head.address},shared_fs=false"
    code, out = finish(sweep(path, "-M", "-F", "runs", "--launcher", launcher, "with", "x=1,2"))
    assert code == 2 and "a folder on this machine" in out and "shared_fs=true" in out, out
    assert not (tmp_path / "runs").exists()
    code, out = finish(sweep(path, "-M", "-m", mongo_url, "--launcher", launcher, "with", "x=1,2"))
    assert code == 0, out
    runs = open_store(mongo_url).all_runs()
    assert sorted((r.status, r.result) for r in runs) == [("COMPLETED", 1), ("COMPLETED", 2)]
    for run in runs:  # started in Ray's unpacked copy of the code, not in this folder
        assert run.meta["cwd"] != str(tmp_path) and "working_dir_files" in run.meta["cwd"], run.meta["cwd"]
        assert run.record["experiment"]["base_dir"] == run.meta["cwd"]


def test_ray_lost_worker_and_ctrl_c_are_recorded_interrupted_and_resumed(ray_head, tmp_path):
    path = write_experiment(tmp_path)
    args = ["-M", "-j", "2", "-F", "runs", "--launcher", f"ray:address={ray_head.address}", "with",
            "x=1,2", f"hold='{tmp_path / 'hold'}'"]
    process = sweep(path, *args)
    lost_worker = int(wait_for_file(tmp_path / "hold-1", process)[1])
    wait_for_file(tmp_path / "hold-2", process)
    os.kill(lost_worker, signal.SIGKILL)  # the Ray worker running x=1 dies, as on a lost node
    deadline = time.monotonic() + HANG_GUARD
    while not any(r["status"] == "INTERRUPTED" for r in open_store(str(tmp_path / "runs")).records()):
        assert time.monotonic() < deadline, "hang guard: the run of the lost worker was never recorded"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # Ctrl-C: the run of x=2 is interrupted through Ray
    code, out = finish(process)
    assert code == 130, out
    runs = {r.config["x"]: r for r in open_store(str(tmp_path / "runs")).all_runs()}
    assert {x: r.status for x, r in runs.items()} == {1: "INTERRUPTED", 2: "INTERRUPTED"}, out
    assert "Aborted after" in runs[1].output and "Aborted after" in runs[2].output
    assert "run 1 [x=1]: WORKER LOST" in out  # as it ended; the table then says what the run recorded
    table = [line.split() for line in out.splitlines() if line[:1] in ("1", "2")]
    assert [(row[0], row[2]) for row in table] == [("1", "INTERRUPTED"), ("2", "INTERRUPTED")], out
    # resubmitting runs what was interrupted, and only that
    (tmp_path / "hold.off").touch()
    code, out = finish(sweep(path, *args))
    assert code == 0, out
    assert "2 planned: 2 to run (retrying 2 INTERRUPTED)" in out
    statuses = sorted((r["config"]["x"], r["status"]) for r in open_store(str(tmp_path / "runs")).records())
    assert statuses == [(1, "COMPLETED"), (1, "INTERRUPTED"), (2, "COMPLETED"), (2, "INTERRUPTED")]


# -- input checks (no engine needed) -----------------------------------------------------------------------------
def test_unknown_launcher_options_are_refused_with_the_known_ones():
    with pytest.raises(CommandLineError, match=r"no option 'num_cpu' \(did you mean 'num_cpus'.*address, num_cpus"):
        create_launcher("ray:num_cpu=2", 1)
    with pytest.raises(CommandLineError, match=r"no option 'partiton' \(did you mean 'partition'.*time, cpus, mem"):
        create_launcher("slurm:partiton=cpu", 1)
    with pytest.raises(CommandLineError, match=r"time=1h: write a whole number"):
        create_launcher("slurm:time=1h", 1)
    with pytest.raises(CommandLineError, match=r"shared_fs=maybe: write shared_fs=true or shared_fs=false"):
        create_launcher("slurm:shared_fs=maybe", 1)
    with pytest.raises(CommandLineError, match=r"additional_parameters: write KEY=VALUE"):
        create_launcher("slurm:additional_parameters=nice", 1)


def test_a_folder_store_the_workers_may_not_see_is_refused_before_any_run(tmp_path):
    local = f"file://{tmp_path / 'runs'}"
    with pytest.raises(CommandLineError) as refused:
        check_stores_reachable("slurm", ["mongodb://db.example:27017/sacred", local], shared_fs=False)
    message = str(refused.value)
    assert str(tmp_path / "runs") in message and "--launcher slurm:shared_fs=true" in message
    assert "mongodb://" in message  # the way out: a store every worker reaches
    check_stores_reachable("slurm", [local], shared_fs=True)  # vouched for
    check_stores_reachable("slurm", ["mongodb://db.example:27017/sacred"], shared_fs=False)


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM])
def test_the_signals_a_cluster_sends_before_a_time_limit_record_the_run_interrupted(script, tmp_path, signum):
    exp = script(ENGINE_EXP.replace("VERSION", "1"))
    process = subprocess.Popen([sys.executable, str(exp.path), "-F", "runs", "with", f"hold='{tmp_path / 'h'}'"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_file(tmp_path / "h-1", process)
    process.send_signal(signum)
    code, out = finish(process)
    assert code == 128 + signum, out
    assert f"Interrupted ({signal.Signals(signum).name}); the run ended as INTERRUPTED" in out
    [run] = open_store(str(tmp_path / "runs")).all_runs()
    assert run.status == "INTERRUPTED" and "Aborted after" in run.output


def snapshot_files(dest):
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


def test_a_code_snapshot_takes_the_code_not_data_stores_earlier_snapshots_or_secrets(tmp_path):
    from labrun.provenance.code_snapshot import DESCRIPTION_FILE, recorded_repositories, take_snapshot

    plain = tmp_path / "plain"  # no git: only source files
    for name, text in {"exp.py": "x = 1\n", "lib/helper.py": "y = 2\n", "config.yaml": "a: 1\n",
                       "data.bin": "\0" * 100, ".env": "TOKEN=1\n", "runs/1/run.json": "{}",
                       "sweeps/abc/code-1/exp.py": "old\n", ".venv/lib/x.py": "", "sub/api_token.txt": "t"}.items():
        (plain / name).parent.mkdir(parents=True, exist_ok=True)
        (plain / name).write_text(text)
    dest = plain / "sweeps" / "def" / "code-2"  # where launchers put it when the journal is in the project
    dest.mkdir(parents=True)
    snapshot_code(SweepSetup("def", str(plain), [f"file://{plain / 'runs'}"], str(plain / "sweeps" / "def")),
                  str(dest))
    assert snapshot_files(dest) == sorted([DESCRIPTION_FILE, "config.yaml", "exp.py", "lib/helper.py"])
    assert recorded_repositories(str(dest / DESCRIPTION_FILE)) == []

    repo = make_repo(tmp_path / "repo", {"exp.py": "x = 1\n", ".gitignore": "data/\n", "data/big.csv": "1,2\n"})
    (repo / "new.py").write_text("z = 3\n")  # untracked, not ignored: it is part of the code
    (repo / ".env").write_text("TOKEN=1\n")
    dest = tmp_path / "snapshots" / "code-1"
    dest.mkdir(parents=True)
    take_snapshot(str(repo), str(dest))
    assert snapshot_files(dest) == sorted([DESCRIPTION_FILE, "exp.py", "new.py"])
    [state] = recorded_repositories(str(dest / DESCRIPTION_FILE))
    assert state["commit"] == git(repo, "rev-parse", "HEAD") and state["dirty"] is True
    assert "new.py" in state["untracked"] and ".env" not in state.get("untracked", {})


def test_a_ray_address_where_nothing_answers_is_refused_at_once(script):
    from servers import free_port

    exp = script(ENGINE_EXP.replace("VERSION", "1"))
    result = exp.run("-M", "-u", "--launcher", f"ray:address=127.0.0.1:{free_port()}", "with", "x=1,2")
    assert result.returncode == 2 and "--launcher ray: nothing answers at 127.0.0.1:" in result.stderr, result.stderr
    result = exp.run("-M", "-u", "--launcher", "ray:address=headnode", "with", "x=1,2")
    assert result.returncode == 2 and "write HOST:PORT" in result.stderr, result.stderr


def test_a_remote_launcher_refuses_a_sweep_started_as_a_module(tmp_path):
    package = tmp_path / "proj"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "exp.py").write_text(ENGINE_EXP.replace("VERSION", "1"))
    out = subprocess.run([sys.executable, "-m", "proj.exp", "-M", "-u", "--launcher",
                          "slurm:time=5", "with", "x=1,2"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=HANG_GUARD)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "start the sweep as `python path/to/exp.py ...` instead" in out.stderr


def test_wait_belongs_to_sweeps(script):
    exp = script("""
        from labrun import Experiment
        ex = Experiment("w")
        @ex.automain
        def main():
            pass
    """)
    result = exp.run("--wait")
    assert result.returncode == 2 and "--wait applies to sweeps only: add -M" in result.stderr
