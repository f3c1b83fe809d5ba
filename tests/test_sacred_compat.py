"""A Sacred script keeps working when only its import lines change.

The scripts in tests/sacred_examples/ are written for Sacred (one per example that ships with Sacred 0.8.7
and needs neither TensorFlow nor a network; written fresh, not copied). Each runs twice, in the same
environment: as it is, under Sacred 0.8.7, and with ``sacred`` replaced by ``labrun`` in its import lines.
What the program prints must be the same, every log line Sacred prints must appear in the same order, and a
run stored by ``FileStorageObserver`` must have Sacred's layout.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "sacred_examples"
HANG_GUARD = 300

CASES = [
    ("hello_world.py", []),
    ("hello_config_dict.py", ["with", "who=Bob"]),
    ("hello_config_scope.py", ["with", "who='Bob'"]),
    ("captured_functions.py", []),
    ("my_commands.py", ["welcome", "with", "name=Jo"]),
    ("my_commands.py", ["yell"]),
    ("randomness.py", ["with", "seed=12345"]),
    ("randomness.py", ["with", "seed=12345", "swap=True", "count=3"]),
    ("magic.py", ["with", "careful", "seed=7"]),
    ("less_magic.py", []),
    ("output_filter.py", ["-F", "runs"]),
    ("ingredients.py", ["with", "data.shuffle=False"]),
    ("ingredients.py", ["data.describe", "with", "data.path=x.csv"]),
    ("log_example.py", ["with", "ready=True"]),
    ("modular.py", []),
    ("named_config.py", ["with", "formal"]),
]


def as_labrun(source: str) -> str:
    """The script with only its import lines changed."""
    return re.sub(r"^(from|import) sacred\b", r"\1 labrun", source, flags=re.M)


def run_both(tmp_path: Path, script: str, argv: list[str]) -> dict[str, subprocess.CompletedProcess]:
    out = {}
    for tool in ("sacred", "labrun"):
        folder = tmp_path / tool
        folder.mkdir()
        source = (EXAMPLES / script).read_text()
        (folder / script).write_text(source if tool == "sacred" else as_labrun(source))
        env = {**os.environ, "NO_COLOR": "1", "LABRUN_JOURNAL_DIR": str(tmp_path / "journal")}
        out[tool] = subprocess.run([sys.executable, script, *argv], cwd=folder, env=env, capture_output=True,
                                   text=True, timeout=HANG_GUARD)
    return out


# Sacred's lines labrun leaves out on purpose (docs/sacred.md, deliberate differences)
NOT_PRINTED = {("ingredients.py", "data.describe"): ["WARNING - with_data - No observers have been added to this run"]}


def log_lines(stderr: str) -> list[str]:
    """Log lines with durations made equal (they depend on the machine's speed)."""
    return [re.sub(r"after \d+:\d\d:\d\d", "after H:MM:SS", line) for line in stderr.splitlines()]


def is_subsequence(wanted: list[str], lines: list[str]) -> bool:
    remaining = iter(lines)
    return all(any(line == want for line in remaining) for want in wanted)


@pytest.mark.parametrize("script,argv", CASES, ids=[f"{s}:{' '.join(a)}" for s, a in CASES])
def test_sacred_example_behaves_the_same(tmp_path, script, argv):
    out = run_both(tmp_path, script, argv)
    sacred, labrun = out["sacred"], out["labrun"]
    assert sacred.returncode == 0, sacred.stderr
    assert labrun.returncode == sacred.returncode, labrun.stderr
    if script == "output_filter.py":  # it prints the stored output, which holds labrun's "Stored in" log line
        sacred.stdout, labrun.stdout = (out.stdout.split("stored:")[0] for out in (sacred, labrun))
    assert labrun.stdout == sacred.stdout
    left_out = NOT_PRINTED.get((script, argv[0] if argv else ""), [])
    wanted = [line for line in log_lines(sacred.stderr) if line not in left_out]
    assert is_subsequence(wanted, log_lines(labrun.stderr)), (sacred.stderr, labrun.stderr)
    assert not set(left_out) & set(log_lines(labrun.stderr))
    stores = [p.relative_to(tmp_path / "sacred") for p in (tmp_path / "sacred").glob("*/1/run.json")]
    for run_json in stores:
        compare_stored_runs(tmp_path / "sacred" / run_json.parent, tmp_path / "labrun" / run_json.parent,
                            fixed_seed=any(a.startswith("seed=") for a in argv) or script == "less_magic.py")


def compare_stored_runs(sacred_dir: Path, labrun_dir: Path, fixed_seed: bool) -> None:
    """labrun's run folder has every file of Sacred's, and each holds what Sacred's holds."""
    sacred_files = {p.name for p in sacred_dir.iterdir()}
    assert sacred_files <= {p.name for p in labrun_dir.iterdir()}
    theirs = json.loads((sacred_dir / "run.json").read_text())
    ours = json.loads((labrun_dir / "run.json").read_text())
    assert set(theirs) <= set(ours)
    for key in ("command", "status", "result", "artifacts", "resources"):
        assert ours[key] == theirs[key], key
    for key in ("name", "mainfile"):
        assert ours["experiment"][key] == theirs["experiment"][key]
    assert [path for path, _ in ours["experiment"]["sources"]] == [path for path, _ in theirs["experiment"]["sources"]]
    assert all(re.fullmatch(r"_sources/\w+_[0-9a-f]{32}\.py", stored) for _, stored in ours["experiment"]["sources"])
    assert set(theirs["meta"]["options"]) <= set(ours["meta"]["options"])
    for key in ("command", "named_configs", "config_updates"):
        assert ours["meta"].get(key) == theirs["meta"].get(key, ours["meta"].get(key)), key
    for name in ("UPDATE", "COMMAND", "with", "--file_storage", "--beat-interval"):
        assert ours["meta"]["options"].get(name) == theirs["meta"]["options"].get(name), name
    our_config = json.loads((labrun_dir / "config.json").read_text())
    their_config = json.loads((sacred_dir / "config.json").read_text())
    if not fixed_seed:  # a seed drawn at random differs, as between two Sacred runs
        our_config.pop("seed"), their_config.pop("seed")
    assert our_config == their_config
    if "metrics.json" in sacred_files:
        their_metrics = json.loads((sacred_dir / "metrics.json").read_text())
        our_metrics = json.loads((labrun_dir / "metrics.json").read_text())
        for name, metric in their_metrics.items():  # labrun adds system/* metrics of its own
            assert (our_metrics[name]["steps"], our_metrics[name]["values"]) == (metric["steps"], metric["values"])
    if "cout.txt" in sacred_files:
        program = [line for line in (sacred_dir / "cout.txt").read_text().splitlines() if " - " not in line]
        assert is_subsequence(program, (labrun_dir / "cout.txt").read_text().splitlines())


def test_output_filter_reaches_the_stored_output_and_run_captured_out(tmp_path):
    out = run_both(tmp_path, "output_filter.py", ["-F", "runs"])["labrun"]
    stored = out.stdout.split("stored: ", 1)[1]
    assert "done 5/5\\n" in stored and "done 4/5" not in stored and "\\x08" not in stored, stored
    assert "INFO - progress_bar - Running command" in stored  # the run's log lines, as Sacred stores them
    cout = (tmp_path / "labrun" / "runs" / "1" / "cout.txt").read_text()
    assert "done 5/5\n" in cout and "done 4/5" not in cout


SACRED_FEATURES = '''
"""A script that uses Sacred's settings, its own flag, extra host facts and an output filter."""
import os
import sys

import numpy as np

from sacred import Experiment, SETTINGS, cli_option, host_info_gatherer
from sacred.observers import FileStorageObserver
from sacred.utils import SacredInterrupt, apply_backspaces_and_linefeeds

SETTINGS.CONFIG.READ_ONLY_CONFIG = False
SETTINGS.HOST_INFO.CAPTURED_ENV = ["COMPAT_MARKER"]
SETTINGS.DISCOVER_SOURCES = "dir"


@cli_option("-x", "--extra-tag")
def extra_tag(value, run):
    """A tag stored in the run's info."""
    run.info["tag"] = value


@host_info_gatherer("answer")
def answer():
    return 42


class Diverged(SacredInterrupt):
    STATUS = "DIVERGED"


ex = Experiment("features", additional_cli_options=[extra_tag], additional_host_info=[answer])
ex.observers.append(FileStorageObserver("runs"))
ex.captured_out_filter = lambda text: text.replace("secret", "******")
ex.add_package_dependency("private-lib", "1.2.3")


@ex.option_hook
def hook(options):
    options["--comment"] = "set by a hook"


@ex.config
def cfg():
    lr = 0.1
    layers = {"a": 1}
    helper = 3
    width = helper * 2
    del helper
    mode = "ok"


@ex.config_hook
def hook_updates(config, command_name, logger):
    config["lr"] = config["lr"] * 2
    return config


@ex.automain
def main(_config, _run, mode):
    _config["layers"]["a"] = 5  # allowed: READ_ONLY_CONFIG is off
    print("the secret is out")
    _run.info["array"] = np.arange(3)
    _run.info["pair"] = (1, 2)
    assert _run.beat_interval == 10.0 and _run.capture_mode in (None, "fd", "sys") and not _run.unobserved
    assert _run.meta_info["options"]["--extra-tag"] == "blue" and _run.host_info["answer"] == 42
    if mode == "diverge":
        raise Diverged()
    if mode == "exit":
        sys.exit(0)
    return np.float64(0.5)
'''


def test_a_script_using_settings_cli_option_host_info_and_output_filter(tmp_path):
    (tmp_path / "features.py").write_text(as_labrun(SACRED_FEATURES))
    env = {**os.environ, "COMPAT_MARKER": "here", "LABRUN_JOURNAL_DIR": str(tmp_path / "journal")}

    def run(*args):
        return subprocess.run([sys.executable, "features.py", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=HANG_GUARD)

    out = run("--extra-tag", "blue", "with", "seed=1")
    assert out.returncode == 0, out.stderr
    assert 'INFO - features - Started run with ID "1"' in out.stderr and "INFO - features - Result: 0.5" in out.stderr
    assert "Stored in runs/1" in out.stderr
    record = json.loads((tmp_path / "runs" / "1" / "run.json").read_text())
    assert record["host"]["answer"] == 42 and record["host"]["ENV"] == {"COMPAT_MARKER": "here"}
    assert "private-lib==1.2.3" in record["experiment"]["dependencies"]
    assert record["meta"]["comment"] == "set by a hook"
    assert record["result"] == {"py/object": "numpy.float64", "dtype": "float64", "value": 0.5}  # Sacred's form
    info = json.loads((tmp_path / "runs" / "1" / "info.json").read_text())
    assert info["tag"] == "blue" and info["pair"] == {"py/tuple": [1, 2]}
    assert info["array"]["py/object"] == "numpy.ndarray" and info["array"]["values"] == [0, 1, 2]
    config = json.loads((tmp_path / "runs" / "1" / "config.json").read_text())
    assert config == {"lr": 0.2, "layers": {"a": 1}, "width": 6, "mode": "ok", "seed": 1}  # hook doubled lr
    assert "the ****** is out" in (tmp_path / "runs" / "1" / "cout.txt").read_text()
    assert [path for path, _ in record["experiment"]["sources"]] == ["features.py"]

    listed = subprocess.run([sys.executable, "-m", "labrun", "ls", "runs", "--format", "json"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert json.loads(listed.stdout)[0]["result"] == 0.5  # shown as the number it is

    diverged = run("-x", "blue", "with", "mode=diverge")
    assert diverged.returncode == 1 and "WARNING - features - Aborted after" in diverged.stderr
    assert json.loads((tmp_path / "runs" / "2" / "run.json").read_text())["status"] == "DIVERGED"
    exited = run("-x", "blue", "with", "mode=exit")
    assert exited.returncode == 0
    assert json.loads((tmp_path / "runs" / "3" / "run.json").read_text())["status"] == "COMPLETED"

    helped = run("--help")
    assert helped.stdout.index("Usage:") < helped.stdout.index("A script that uses Sacred's settings")
    assert "-x VALUE, --extra-tag=VALUE" in helped.stdout and "A tag stored in the run's info." in helped.stdout


def test_sacred_names_import_from_labrun():
    code = ("from labrun.experiment import Experiment\n"
            "from labrun import experiment, Ingredient, SETTINGS, cli_option, host_info_gatherer\n"
            "from labrun.observers import RunObserver, QueuedMongoObserver, MongoObserver, FileStorageObserver\n"
            "from labrun.utils import (apply_backspaces_and_linefeeds, SacredInterrupt, TimeoutInterrupt,\n"
            "    CircularDependencyError, ConfigAddedError, MissingConfigError, SacredError)\n"
            "from labrun.config import ConfigScope, ConfigDict, load_config_file, save_config_file\n"
            "from labrun.randomness import get_seed, create_rnd\n"
            "from labrun.host_info import host_info_getter, IgnoreHostInfo\n"
            "from labrun.commandline_options import cli_option, CLIOption\n"
            "import labrun.stflow, sys\n"
            "assert QueuedMongoObserver is MongoObserver and callable(experiment)\n"
            "assert 'tensorflow' not in sys.modules\n"
            "print(MongoObserver(url='127.0.0.1:27017', db_name='lab').url, MongoObserver.create().url)\n"
            "SETTINGS.CONFIG.READ_ONLY_CONFIG = True\n"
            "try:\n"
            "    SETTINGS.CONFIG.READ_ONLY_CONFG = True\n"
            "except Exception as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD)
    assert out.returncode == 0, out.stderr
    assert "mongodb://127.0.0.1:27017/lab mongodb://localhost:27017/sacred" in out.stdout
    assert "unknown setting 'READ_ONLY_CONFG' (did you mean 'READ_ONLY_CONFIG'?)" in out.stdout


def test_run_attributes_a_sacred_script_reads(tmp_path):
    from labrun import Experiment

    ex = Experiment("attrs")
    seen = {}

    @ex.main
    def main(_run):
        for name in ("beat_interval", "host_info", "captured_out", "debug", "pdb", "unobserved", "run_logger",
                     "root_logger", "capture_mode", "force", "queue_only", "meta_info", "experiment_info",
                     "start_time", "stop_time", "info", "result", "status", "config", "config_modifications"):
            seen[name] = getattr(_run, name)
        return 3

    run = ex.run(options={"--unobserved": True, "--force": True})
    assert seen["status"] == "RUNNING" and seen["stop_time"] is None and seen["unobserved"] is True
    assert seen["force"] is True and seen["queue_only"] is False and seen["beat_interval"] == 10.0
    assert seen["run_logger"].name == "attrs" and seen["root_logger"].name == "root"
    assert seen["experiment_info"]["name"] == "attrs" and "seed" in seen["config"]
    assert run.result == 3 and run.status == "COMPLETED" and run.stop_time is not None


def test_named_config_and_ingredient_scopes_that_take_parameters():
    from labrun import Experiment, Ingredient

    data = Ingredient("data")

    @data.config
    def data_cfg(_log):
        size = 10

    ex = Experiment("params", ingredients=[data])

    @ex.config
    def cfg(data):
        batches = data["size"] // 2

    @ex.named_config
    def big(batches):
        batches = batches * 10

    @ex.main
    def main(batches):
        return batches

    assert ex.run().result == 5
    assert ex.run(named_configs=["big"]).result == 50
    assert ex.run(config_updates={"data.size": 4}).result == 2


def test_mongodb_documents_hold_sacreds_forms(mongo_url):
    import numpy as np
    import pymongo

    from labrun import Experiment
    from labrun.observers import MongoObserver

    ex = Experiment("forms")
    ex.observers.append(MongoObserver(url=mongo_url))

    @ex.main
    def main(_run):
        _run.info["shape"] = (2, 3)
        return np.arange(3, dtype=np.int32)

    run = ex.run(options={"--file_storage": None, "--comment": "sacred keys"})
    client = pymongo.MongoClient(mongo_url)
    try:
        document = client.get_default_database().runs.find_one({"_id": run._id})
    finally:
        client.close()
    assert document["result"] == {"py/object": "numpy.ndarray", "dtype": "int32", "values": [0, 1, 2]}
    assert document["info"]["shape"] == {"py/tuple": [2, 3]}
    assert document["meta"]["options"]["--mongo_db"] is None and document["meta"]["comment"] == "sacred keys"
