"""The experiment command line, run as a user runs it: ``python exp.py ...`` in a subprocess."""

import json

import pytest
import yaml

EXP = '''
from labrun import Experiment

ex = Experiment("clidemo")


@ex.config
def cfg():
    lr = 0.01  # learning rate
    width = 8
    hidden = 2 * width
    sizes = [1, 2, 3]
    opt = {"name": "sgd", "momentum": 0.9}
    flag = False


@ex.named_config
def fast():
    """Few epochs."""
    width = 2


@ex.command
def show(lr, sizes, opt, flag, hidden, _run):
    """Print what the command sees."""
    import json
    print("SHOW " + json.dumps({"lr": lr, "sizes": sizes, "opt": opt, "flag": flag, "hidden": hidden,
                                "meta": _run.meta_info}))


@ex.command
def fail():
    """Always fails."""
    raise RuntimeError("deliberate failure")


@ex.automain
def main(lr):
    """Train the model."""
    print("MAIN", lr)
    return lr
'''


@pytest.fixture
def exp(script):
    return script(EXP)


def shown(out):
    line = next(text for text in out.stdout.splitlines() if text.startswith("SHOW "))
    return json.loads(line[5:])


def test_main_runs_by_default(exp):
    out = exp.run()
    assert out.returncode == 0, out.stderr
    assert "MAIN 0.01" in out.stdout
    assert "Running command 'main'" in out.stderr and "Completed after" in out.stderr


def test_update_syntax(exp):
    out = exp.run("show", "with", "lr=1e-3", "sizes.0=5", "opt.name=adam", "flag=True", 'width=16')
    assert out.returncode == 0, out.stderr
    values = shown(out)
    assert values["lr"] == 0.001 and values["sizes"] == [5, 2, 3] and values["flag"] is True
    assert values["opt"] == {"name": "adam", "momentum": 0.9} and values["hidden"] == 32


def test_strings_replace_and_quoted_values(exp):
    out = exp.run("show", "-f", "with", "opt:={'name': 'adam'}", 'lr="0.5"', "flag=yes")
    values = shown(out)
    assert values["opt"] == {"name": "adam"}
    assert values["lr"] == "0.5" and values["flag"] == "yes"  # -f: the types were checked and forced
    refused = exp.run("show", "with", "flag=yes")
    assert refused.returncode == 2 and "gives the bool entry 'flag' a str" in refused.stderr


def test_named_config_and_config_file(exp):
    (exp.path.parent / "over.yaml").write_text("lr: 0.25\n")
    out = exp.run("show", "with", "fast", "over.yaml")
    values = shown(out)
    assert values["hidden"] == 4 and values["lr"] == 0.25
    assert values["meta"]["named_configs"] == ["fast", "over.yaml"]


@pytest.mark.parametrize("token,needle", [
    ("lr=", "has no value after '='"),
    ("=3", "has no key before '='"),
    ("a..b=1", "empty or padded part"),
])
def test_malformed_updates_quote_the_token(exp, token, needle):
    out = exp.run("with", token)
    assert out.returncode == 2
    assert f"'{token}'" in out.stderr and needle in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_key_named_config_and_option_errors(exp):
    out = exp.run("with", "lrr=1")
    assert out.returncode == 2 and "did you mean 'lr'" in out.stderr
    assert out.stderr.startswith("error: ")
    out = exp.run("with", "fats")
    assert out.returncode == 2 and "did you mean 'fast'" in out.stderr and "available: fast" in out.stderr
    out = exp.run("--beat-intervall=3")
    assert out.returncode == 2 and "did you mean '--beat-interval'" in out.stderr and "usage:" in out.stderr
    out = exp.run("trian")
    assert out.returncode == 2 and "unknown command 'trian'" in out.stderr
    out = exp.run("with", "missing.json")
    assert out.returncode == 2 and "config file 'missing.json' does not exist" in out.stderr


def test_force_allows_new_keys(exp):
    out = exp.run("show", "with", "brand_new=1", "-f")
    assert out.returncode == 0, out.stderr


def test_debug_shows_the_traceback_of_input_errors(exp):
    out = exp.run("with", "lrr=1", "-d")
    assert out.returncode == 2 and "Traceback" in out.stderr and "ConfigAddedError" in out.stderr


def test_failing_command_hides_labrun_frames(exp):
    out = exp.run("fail")
    assert out.returncode == 1
    assert "RuntimeError: deliberate failure" in out.stderr
    assert 'exp.py", line' in out.stderr
    assert "/labrun/" not in out.stderr and "wrapt" not in out.stderr
    full = exp.run("fail", "-d")
    assert "/labrun/" in full.stderr


def test_both_option_spellings_are_stored(exp):
    out = exp.run("show", "--beat_interval=3", "--print-config", "-c", "a note", "-P", "2")
    values = shown(out)
    options = values["meta"]["options"]
    assert options["--beat-interval"] == 3.0 and options["--print-config"] is True
    assert values["meta"]["comment"] == "a note" and values["meta"]["priority"] == 2.0
    assert "Configuration (" in out.stdout  # -p printed the config first


def test_unavailable_observer_is_named_clearly(exp):
    out = exp.run("-o", "nosuch://x")
    assert out.returncode == 2 and "no observer is registered for 'nosuch://'" in out.stderr


def test_print_config_marks_and_docs(exp):
    out = exp.run("print_config", "with", "lr=0.1", "width=many", "brand=1", "-f")
    assert out.returncode == 0, out.stderr
    lines = {text.split("=")[0].strip(): text for text in out.stdout.splitlines() if "=" in text}
    assert "[modified]" in lines["lr"] and "# learning rate" in lines["lr"]
    assert "[typechanged: int -> str]" in lines["width"]
    assert "[added]" in lines["brand"]
    assert "[modified]" not in lines["sizes"]


def test_print_config_colours_on_a_terminal(exp):
    out = exp.run("print_config", "with", "lr=0.1", env={"FORCE_COLOR": "1"})
    assert "\033[34m  lr = 0.1\033[0m" in out.stdout  # modified entries are blue


def test_save_config_json_and_yaml(exp):
    out = exp.run("save_config", "with", "lr=0.5", "seed=3")
    assert out.returncode == 0, out.stderr
    saved = json.loads((exp.path.parent / "config.json").read_text())
    assert saved["lr"] == 0.5 and saved["seed"] == 3
    exp.run("save_config", "conf.yaml", "with", "width=3")
    assert yaml.safe_load((exp.path.parent / "conf.yaml").read_text())["hidden"] == 6
    # what was saved runs again as a config file
    out = exp.run("show", "with", "conf.yaml")
    assert shown(out)["hidden"] == 6


def test_print_named_configs_and_help(exp):
    out = exp.run("print_named_configs")
    assert "fast" in out.stdout and "Few epochs." in out.stdout
    out = exp.run("--help")
    assert out.returncode == 0
    for text in ["main (default)", "Train the model.", "show", "print_config", "save_config", "--beat-interval",
                 "--observer", "a:={'k': 1}"]:
        assert text in out.stdout
    out = exp.run("help", "show")
    assert "show(lr, sizes, opt, flag, hidden, _run)" in out.stdout and "Print what the command sees." in out.stdout
    assert exp.run("help", "shwo").returncode == 2


def test_loglevel(exp):
    out = exp.run("-l", "WARNING")
    assert "Running command" not in out.stderr and out.returncode == 0
    assert exp.run("-l", "LOUD").returncode == 2


def test_unobserved_skips_observers_and_name_is_recorded(exp):
    assert exp.run("-u", "-o", "nosuch://x").returncode == 0
    out = exp.run("show", "-n", "renamed")
    assert out.returncode == 0


def test_pdb_opens_the_debugger_at_the_failure(exp):
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(exp.path), "fail", "-D"], cwd=exp.path.parent, text=True,
                         input="p 'IN' + 'PDB'\nq\n", capture_output=True, timeout=60,
                         env={**os.environ, "NO_COLOR": "1"})
    assert "INPDB" in out.stdout and out.returncode == 1
