"""Running a recorded run again: drift report, code, command line, new process, optional check."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Sequence

from labrun._util.env_vars import RERUN_OF_ENV, RUN_UID_ENV
from labrun.errors import RerunError
from labrun.readback import StoredRun, locate_run, open_store
from labrun._util.redact import redact_url
from labrun.rerun.check import compared_metrics, differences
from labrun.rerun.drift import environment_drift
from labrun.rerun.materialise import Materialised, main_repository, materialise

CARRIED_OPTIONS = ("--name", "--capture", "--beat-interval")  # recorded options the rerun keeps


def command_line(run: StoredRun, main_file: str, config_file: str) -> list[str]:
    """The experiment's command with the stored config (seed included), recording into the same store."""
    meta = run.record.get("meta", {})
    command = run.record.get("command") or meta.get("command")
    if not command:
        raise RerunError(f"run {run.run_id} has no recorded command; it cannot be re-executed")
    args = [sys.executable, main_file, command, "with", config_file]
    options = meta.get("options", {})
    for option in CARRIED_OPTIONS:
        if options.get(option) not in (None, False, ""):
            args += [option, str(options[option])]
    return args + run.observer_args


def rerun(run_args: Sequence[str], *, here: bool = False, check: bool = False, tolerance: float = 1e-9,
          dry_run: bool = False, keep: bool = False) -> int:
    """Re-execute a recorded run; the exit status for the ``labrun`` command."""
    original = locate_run(run_args)
    experiment = original.record.get("experiment", {})
    base_dir, mainfile = experiment.get("base_dir"), experiment.get("mainfile")
    if not base_dir or not mainfile:
        raise RerunError(f"run {original.run_id} was not started from a script file (no mainfile recorded); "
                         f"only scripts can be re-executed")
    print(f"Re-running run {original.run_id} of {original.store} ({experiment.get('name')}, "
          f"started {original.record.get('start_time')})")
    drift = environment_drift(original.record)
    print("Environment drift since then:" if drift else "No environment drift: same Python, packages, commit "
          "and host.")
    for line in drift:
        print(f"  {line}")
    scratch = tempfile.mkdtemp(prefix="labrun-rerun-")
    try:
        code = _code(original, scratch, here, dry_run)
        config_file = os.path.join(scratch, "config.json")
        with open(config_file, "w", encoding="utf-8") as f:
            json.dump(original.config, f)
        main_file = os.path.join(code.base_dir, mainfile)
        args = command_line(original, main_file, config_file)
        cwd = _working_folder(original, code)
        print(f"Code: {code.origin}")
        for warning in code.warnings:
            print(f"  warning: {warning}")
        print(f"Command (in {cwd}):\n  {redact_url(shlex.join(args))}")
        if dry_run:
            return 0
        uid = os.urandom(16).hex()
        env = {**os.environ, RUN_UID_ENV: uid,
               RERUN_OF_ENV: json.dumps({"run_id": original.run_id, "store": original.store, "uid": original.uid}),
               "PYTHONPATH": os.pathsep.join(filter(None, [code.root, os.environ.get("PYTHONPATH")]))}
        status = subprocess.run(args, cwd=cwd, env=env).returncode
        if not check:
            return status
        return _check(original, uid, tolerance, status)
    finally:
        if keep:
            print(f"The code and config are kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _code(original: StoredRun, scratch: str, here: bool, dry_run: bool) -> Materialised:
    base_dir = original.record["experiment"]["base_dir"]
    if here:
        if not os.path.exists(os.path.join(base_dir, original.record["experiment"]["mainfile"])):
            raise RerunError(f"--here: {base_dir} has no {original.record['experiment']['mainfile']} any more")
        return Materialised(base_dir, base_dir, f"the current working tree at {base_dir} (--here)", [])
    return materialise(original, os.path.join(scratch, "code"))


def _working_folder(original: StoredRun, code: Materialised) -> str:
    """The original run's working folder: its copy inside the materialised code, else itself if it exists."""
    cwd = original.record.get("meta", {}).get("cwd")
    base_dir = original.record["experiment"]["base_dir"]
    if cwd:
        inside = code.translate(base_dir, cwd)
        if inside:
            return inside
        repo = main_repository(original)
        tree = repo["path"] if repo else base_dir  # never run inside the user's working tree
        if os.path.isdir(cwd) and not (cwd + os.sep).startswith(tree.rstrip(os.sep) + os.sep):
            return cwd
    return code.base_dir


def _check(original: StoredRun, uid: str, tolerance: float, status: int) -> int:
    new = open_store(original.store_url or original.store).find_uid(uid)
    if new is None:
        print(f"check failed: the rerun (exit status {status}) recorded no run in {original.store}",
              file=sys.stderr)
        return status or 1
    found = differences(original, new, tolerance)
    if found:
        print(f"check failed: run {new.run_id} differs from run {original.run_id}:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        return 1
    metrics = len(compared_metrics(original))
    print(f"check passed: run {new.run_id} matches run {original.run_id} (status, result and the final values of "
          f"{metrics} metric{'s' if metrics != 1 else ''}, tolerance {tolerance:g})")
    return 0
