"""Secrets stay secret, bad input stops before the run, and what a run keeps is private and bounded."""

import json
import os
import stat
import subprocess
import sys
import time

from gitrepo import make_repo
from servers import free_port

from labrun import Experiment

HANG_GUARD = 300

SCRIPT = """
import os, time
from labrun import Experiment

ex = Experiment("guarded")

@ex.config
def cfg():
    lr = 0.1
    name = "base"
    sizes = [1, 2]
    wait_for = ""

@ex.automain
def main(lr, name, sizes, wait_for):
    deadline = time.monotonic() + 300
    while wait_for and not os.path.exists(wait_for) and time.monotonic() < deadline:
        time.sleep(0.05)
    return lr
"""


def run_script(folder, *args, env=None):
    return subprocess.run([sys.executable, "exp.py", *args], cwd=folder, capture_output=True, text=True,
                          timeout=HANG_GUARD, env={**os.environ, **(env or {})})


def script_folder(tmp_path, source=SCRIPT):
    folder = tmp_path / "proj"
    folder.mkdir(exist_ok=True)
    (folder / "exp.py").write_text(source)
    return folder


def test_ids_cannot_leave_the_store(tmp_path):
    folder = script_folder(tmp_path)
    for bad in ("../escaped", "/abs/dir", "a/b", ".."):
        out = run_script(folder, "-F", "store", "--id", bad)
        assert out.returncode == 2 and "is not a plain name" in out.stderr, (bad, out.stderr)
    assert not (tmp_path / "escaped").exists() and not os.path.exists("/abs/dir")
    assert run_script(folder, "-F", "store", "--id", "baseline-1").returncode == 0
    assert (folder / "store" / "baseline-1" / "run.json").exists()


def test_secret_looking_untracked_files_are_never_stored(tmp_path):
    repo = make_repo(tmp_path / "repo", {"exp.py": SCRIPT, ".gitignore": "runs/\n"})
    (repo / "cloud_credentials.ini").write_text("[default]\naws_secret = VERYSECRET1\n")
    (repo / ".env").write_text("API_TOKEN=VERYSECRET2\n")
    (repo / "notes.yaml").write_text("password: VERYSECRET3\n")
    (repo / "tokenizer.py").write_text("VOCAB = 3\n")  # code, not a token
    env = {"LABRUN_SECRET_FILES": "notes.*", "LABRUN_RECORD_ENV": "MYAPP_*,MYAPP_EXACT_TOKEN",
           "MYAPP_TOKEN": "VERYSECRET4", "MYAPP_EXACT_TOKEN": "wanted", "MYAPP_MODE": "fast"}
    out = run_script(repo, "-F", "runs", env=env)
    assert out.returncode == 0, out.stderr
    stored = (repo / "runs" / "1" / "run.json").read_text()
    assert "VERYSECRET" not in stored
    git = json.loads(stored)["experiment"]["repositories"][0]
    assert sorted(git["untracked_secret"]) == [".env", "cloud_credentials.ini", "notes.yaml"]
    assert list(git["untracked"]) == ["tokenizer.py"]
    assert "storing untracked file with the run: tokenizer.py" in out.stderr
    assert "not storing" in out.stderr and "cloud_credentials.ini" in out.stderr
    recorded_env = json.loads(stored)["host"]["ENV"]
    assert recorded_env == {"MYAPP_EXACT_TOKEN": "wanted", "MYAPP_MODE": "fast", "MYAPP_TOKEN": "***"}


def test_observer_targets_that_can_never_work_stop_the_run_before_it_starts(tmp_path):
    folder = script_folder(tmp_path)
    (tmp_path / "a_file").write_text("")
    cases = {
        ("-m", "mongodb://"): "names no host",
        ("-m", "mongodb://127.0.0.1:notaport/db"): "has the port 'notaport'",
        ("-F", str(tmp_path / "a_file" / "runs")): "is a file, not a folder",
        ("-F", "/proc/labrun-cannot-write"): "cannot be written",
        ("--tensorboard", str(tmp_path / "a_file")): "is a file, not a folder",
        ("--mlflow", "http://bob:pw@127.0.0.1:99999"): "has the port '99999'",
    }
    for args, message in cases.items():
        out = run_script(folder, *args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
        assert "Running command" not in out.stderr and "pw@" not in out.stderr
    # Only unreachable: the run goes on and its journal keeps it, as before.
    unreachable = f"mongodb://127.0.0.1:{free_port()}/db?serverSelectionTimeoutMS=200"
    out = run_script(folder, "-m", unreachable, env={"LABRUN_DELIVERY_TIMEOUT": "2"})
    assert out.returncode == 0 and "Completed after" in out.stderr, out.stderr


def test_lenient_updates_are_errors_before_the_run(tmp_path):
    folder = script_folder(tmp_path)
    cases = {
        ("lr=0.1", "lr=0.2"): "'lr' is given twice (lr=0.1 and lr=0.2)",
        ("sizes=[1,2",): "starts like a Python literal but does not parse ('[' was never closed",
        ("lr=abc",): "gives the float entry 'lr' a str",
        ("name=5",): """write it in quotes to mean the text: name="'5'\"""",
    }
    for updates, message in cases.items():
        out = run_script(folder, "-u", "with", *updates)
        assert out.returncode == 2 and message in out.stderr, (updates, out.stderr)
        assert "Running command" not in out.stderr
    assert run_script(folder, "-u", "-f", "with", "lr=abc").returncode == 0  # -f forces it
    quoted = run_script(folder, "-u", "-f", "-p", "with", 'sizes="[1,2"')  # quoted: meant as the text
    assert quoted.returncode == 0 and "sizes = '[1,2'" in quoted.stdout, quoted.stdout + quoted.stderr
    for allowed in (("lr=1",), ("lr=None",), ("name='x'",)):
        out = run_script(folder, "-u", "with", *allowed)
        assert out.returncode == 0, (allowed, out.stderr)


def test_journal_is_private_to_the_user(tmp_path):
    folder = script_folder(tmp_path)
    journal = tmp_path / "journal"
    unreachable = f"mongodb://127.0.0.1:{free_port()}/db?serverSelectionTimeoutMS=200"
    out = run_script(folder, "-m", unreachable,
                     env={"LABRUN_DELIVERY_TIMEOUT": "1", "LABRUN_JOURNAL_DIR": str(journal)})
    assert out.returncode == 0, out.stderr
    kept = [p for p in journal.iterdir() if p.is_dir()]
    assert len(kept) == 1  # not delivered: kept for `labrun sync`
    paths = [journal, *kept, *kept[0].rglob("*")]
    assert len(paths) > 4
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def test_unobserved_runs_keep_only_each_metrics_last_point():
    ex = Experiment("bounded")

    @ex.main
    def main(_run):
        for i in range(200_000):
            _run.log_scalar("loss", 1.0 / (i + 1))
        _run.log_scalar("acc", 0.5, step=7)
        return {name: list(buffer.points) for name, buffer in _run.metric_buffers.items()}

    kept = ex.run(options={"--unobserved": True}).result
    assert kept["loss"][:2] == [199_999, 1.0 / 200_000] and len(kept["loss"]) == 3
    assert kept["acc"][:2] == [7, 0.5]


def test_live_runs_do_not_count_as_undelivered_journals(tmp_path):
    folder = script_folder(tmp_path)
    release = tmp_path / "release"
    env = {**os.environ, "LABRUN_JOURNAL_DIR": str(tmp_path / "journal")}
    live = subprocess.Popen([sys.executable, "exp.py", "-F", "runs", "with", f"wait_for='{release}'"], cwd=folder,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not list((tmp_path / "journal").glob("*/events.jsonl")):
            assert time.monotonic() < deadline, "the live run never started its journal"
            time.sleep(0.05)
        out = run_script(folder, "-F", "runs", env={"LABRUN_JOURNAL_DIR": str(tmp_path / "journal")})
        assert out.returncode == 0, out.stderr
        assert "not fully delivered" not in out.stderr
    finally:
        release.write_text("")
        live.wait(HANG_GUARD)
    assert live.returncode == 0


def test_a_failing_config_scope_shows_the_users_frames_only(tmp_path):
    folder = script_folder(tmp_path, SCRIPT.replace('    wait_for = ""', '    wait_for = ""\n    broken = 1 / 0'))
    out = run_script(folder, "-u")
    assert out.returncode == 1
    assert 'exp.py", line' in out.stderr and "ZeroDivisionError" in out.stderr
    assert "/labrun/" not in out.stderr and "no run started" in out.stderr
