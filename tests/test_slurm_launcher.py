"""The Slurm launcher on a real single-node Slurm cluster with accounting (tests/slurm_cluster.py).

Marked ``slurm``: it needs root and Debian's Slurm, munge, slurmdbd and MariaDB packages, so README's main
test command leaves it out and a command of its own installs them and runs it (docs/launchers.md).
"""

import os
import subprocess
import sys
import time

import pytest

from gitrepo import git, make_repo
from labrun.readback import open_store
from test_launchers import ENGINE_EXP, HANG_GUARD, finish, wait_for_file

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    from slurm_cluster import SlurmCluster

    cluster = SlurmCluster(str(tmp_path_factory.mktemp("slurm"))).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def slurm_without_accounting(tmp_path_factory):
    from slurm_cluster import SlurmCluster

    cluster = SlurmCluster(str(tmp_path_factory.mktemp("slurm-plain")), accounting=False).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def project(tmp_path):
    """An experiment committed in a git repository, its file store ignored."""
    return make_repo(tmp_path / "project", {"exp.py": ENGINE_EXP.replace("VERSION", "1"), ".gitignore": "runs/\n"})


def sweep(slurm, project, *args):
    return subprocess.Popen([sys.executable, "exp.py", "-M", "-F", "runs", *args], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NO_COLOR": "1", **slurm.env})


def runs_by_x(project):
    return sorted(open_store(str(project / "runs")).all_runs(), key=lambda r: (r.config["x"], r.status))


def test_a_sweep_is_one_job_array_and_each_run_records_its_task(slurm, project):
    code, out = finish(sweep(slurm, project, "-j", "2", "--wait", "--launcher",
                             "slurm:shared_fs=true,time=10,cpus=1,mem=100M", "with", "x=1,2,3,4"))
    assert code == 0, out
    assert "4 of 4 completed" in out
    runs = runs_by_x(project)
    assert [(r.status, r.result) for r in runs] == [("COMPLETED", x) for x in (1, 2, 3, 4)]
    launchers = [r.meta["launcher"] for r in runs]
    assert {m["name"] for m in launchers} == {"slurm"} and {m["node"] for m in launchers} == {"localhost"}
    [array_id] = {m["job_id"] for m in launchers}  # one job array for the sweep
    assert sorted(m["array_task_id"] for m in launchers) == [0, 1, 2, 3]
    expected = [f"{array_id}_{i}|COMPLETED" for i in range(4)]
    deadline = time.monotonic() + HANG_GUARD  # slurmdbd records a job's end a moment after it ended
    while (accounting := sorted(subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", array_id], env={**os.environ, **slurm.env},
            capture_output=True, text=True).stdout.split())) != expected:
        assert time.monotonic() < deadline, f"hang guard: sacct says {accounting}"
        time.sleep(0.5)


def test_submitting_returns_at_once_and_queued_runs_keep_the_code_of_submission(slurm, project, tmp_path):
    hold = tmp_path / "hold"
    process = sweep(slurm, project, "-j", "1", "--launcher", "slurm:shared_fs=true,time=10", "with", "x=1,2,3",
                    f"hold='{hold}'")
    code, out = finish(process)  # returns while the first run waits on hold.off: it did not wait for the runs
    assert code == 0, out
    assert "submitted 3 run(s) to Slurm as job" in out and "squeue -j" in out
    assert "labrun ls file://runs --where sweep=" in out
    job_id = out.split("as job ")[1].split()[0]
    # the first run starts and waits; the code changes while the other two wait in the queue
    deadline = time.monotonic() + HANG_GUARD
    while not (tmp_path / "hold-1").exists():
        assert time.monotonic() < deadline, "hang guard: the first task never started"
        time.sleep(0.2)
    (project / "exp.py").write_text(ENGINE_EXP.replace("VERSION", "100"))
    (tmp_path / "hold.off").touch()
    while len([r for r in open_store(str(project / "runs")).records() if r["status"] == "COMPLETED"]) < 3:
        assert time.monotonic() < deadline, "hang guard: the runs never completed"
        time.sleep(0.5)
    runs = runs_by_x(project)
    assert [r.result for r in runs] == [1, 2, 3]  # not 100, 200, 300: the edit came after submission
    for run in runs:
        assert run.meta["launcher"]["job_id"] == job_id
        [repository] = run.record["experiment"]["repositories"]
        assert repository["dirty"] is False  # the state at submission, not the edited working tree
        assert "x * 1" in open(run.sources["exp.py"]).read()


def test_a_cancelled_task_is_recorded_interrupted_and_resubmitting_resumes_it(slurm, project, tmp_path):
    hold = tmp_path / "hold"
    args = ["-j", "2", "--wait", "--launcher", "slurm:shared_fs=true,time=10", "with", "x=1,2", f"hold='{hold}'"]
    process = sweep(slurm, project, *args)
    task = wait_for_file(tmp_path / "hold-1", process)[2]  # ARRAYJOB_TASK of the run with x=1
    wait_for_file(tmp_path / "hold-2", process)
    subprocess.run(["scancel", task], env={**os.environ, **slurm.env}, check=True)
    deadline = time.monotonic() + HANG_GUARD
    while not any(r["status"] == "INTERRUPTED" for r in open_store(str(project / "runs")).records()):
        assert time.monotonic() < deadline, "hang guard: the cancelled run was never recorded"
        time.sleep(0.2)
    (tmp_path / "hold.off").touch()  # the other run goes on to complete
    code, out = finish(process)
    assert code == 1, out
    assert "1 of 2 completed, 1 failed or interrupted" in out
    cancelled, completed = runs_by_x(project)
    assert (cancelled.config["x"], cancelled.status) == (1, "INTERRUPTED") and "Aborted after" in cancelled.output
    assert (completed.config["x"], completed.status) == (2, "COMPLETED")
    assert f"{cancelled.meta['launcher']['job_id']}_{cancelled.meta['launcher']['array_task_id']}" == task
    code, out = finish(sweep(slurm, project, *args))
    assert code == 0, out
    assert "2 planned: 1 already completed, 1 to run (retrying 1 INTERRUPTED)" in out
    assert [(r.config["x"], r.status) for r in runs_by_x(project)] == [
        (1, "COMPLETED"), (1, "INTERRUPTED"), (2, "COMPLETED")]


def test_a_run_warned_of_its_time_limit_records_itself_interrupted(slurm, project, tmp_path):
    # A 3-minute limit, with submitit's SIGUSR2 asked for 90 s before it. Slurm may send it up to 60 s early
    # (sbatch --signal) or about 30 s late (its time-limit checks), so it comes between 30 s after the start
    # (the run is waiting by then, even on a busy machine) and well before the limit's SIGTERM.
    code, out = finish(sweep(slurm, project, "--wait", "--launcher", "slurm:shared_fs=true,time=3,signal_delay=90",
                             "with", f"hold='{tmp_path / 'hold'}'"))
    assert code == 1, out
    log = next((tmp_path / "sweeps").glob("*/1.log")).read_text()
    assert "run 1: INTERRUPTED (exit status 140)" in out, out + log  # 128 + SIGUSR2
    [run] = runs_by_x(project)
    assert run.status == "INTERRUPTED" and "Aborted after" in run.output
    assert "Interrupted (SIGUSR2); the run ended as INTERRUPTED and every store recorded it" in log, log


def test_fail_fast_withdraws_the_tasks_still_queued(slurm, project):
    code, out = finish(sweep(slurm, project, "-j", "1", "--wait", "--fail-fast", "--launcher",
                             "slurm:shared_fs=true,time=10", "with", "x=-1,2,3"))
    assert code == 1, out
    assert "--fail-fast: starting no more runs" in out and "x must not be negative" in out
    table = {row[0]: row for row in (line.split() for line in out.splitlines()) if row and row[0] in "123"}
    assert table["1"][2] == "FAILED" and table["3"][1:4] == ["NOT", "RUN", "3"], out
    assert all(r.config["x"] != 3 for r in runs_by_x(project))  # its task was cancelled in the queue
    queue = subprocess.run(["squeue", "-h"], env={**os.environ, **slurm.env}, capture_output=True, text=True)
    assert queue.stdout.strip() == ""


def test_wait_ends_without_accounting_when_a_queued_task_is_cancelled(slurm_without_accounting, project,
                                                                       tmp_path):
    # sacct answers nothing here, so only squeue can tell that the cancelled task is gone
    slurm = slurm_without_accounting
    hold = tmp_path / "hold"
    process = sweep(slurm, project, "-j", "1", "--wait", "--launcher", "slurm:shared_fs=true,time=10", "with",
                    "x=1,2", f"hold='{hold}'")
    array_id = wait_for_file(tmp_path / "hold-1", process)[2].split("_")[0]
    subprocess.run(["scancel", f"{array_id}_1"], env={**os.environ, **slurm.env}, check=True)  # still queued
    (tmp_path / "hold.off").touch()
    code, out = finish(process)
    assert code == 0, out
    assert "1 of 2 completed, 1 not run; run the same command again to run only those" in out
    assert [(r.config["x"], r.status) for r in runs_by_x(project)] == [(1, "COMPLETED")]


def test_a_folder_store_is_refused_unless_the_filesystem_is_shared(slurm, project):
    code, out = finish(sweep(slurm, project, "--launcher", "slurm", "with", "x=1,2"))
    assert code == 2, out
    assert "a folder on this machine" in out and "--launcher slurm:shared_fs=true" in out
    assert not (project / "runs").exists()
    queue = subprocess.run(["squeue", "-h"], env={**os.environ, **slurm.env}, capture_output=True, text=True)
    assert queue.stdout.strip() == ""  # nothing was submitted
    assert git(project, "status", "--porcelain") == ""
