"""The package as a user installs and imports it."""

import configparser
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

HEAVY = ["yaml", "docopt", "wrapt", "pymongo", "mlflow", "git", "psutil", "pynvml", "numpy", "tensorboard"]


def test_import_labrun_loads_no_heavy_module():
    code = "import sys, labrun; labrun.__version__; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert not loaded & set(HEAVY), f"import labrun loaded {loaded & set(HEAVY)}"


def test_experiment_import_defers_backends_and_parsers():
    code = ("import sys; from labrun import Experiment; ex = Experiment('x')\n"
            "@ex.config\ndef c():\n    a = 1\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert not loaded & {"yaml", "docopt", "pymongo", "mlflow", "git", "psutil", "numpy"}


def test_a_file_store_run_loads_no_costly_module(tmp_path):
    """A run pays for what it uses: neither OpenSSL (hashlib, ~4 ms), the psutil or GitPython imports, nor a
    backend it does not use is loaded by a whole run with the file store (docs/performance.md)."""
    code = ("import sys; from labrun import Experiment\n"
            "from labrun.observers.file_storage import FileStorageObserver\n"
            "ex = Experiment('x'); ex.observers.append(FileStorageObserver(sys.argv[1]))\n"
            "@ex.main\ndef main(_run):\n    _run.log_scalar('loss', 0.5)\n"
            "ex.run(options={'--loglevel': 'ERROR'})\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code, str(tmp_path / "runs")], capture_output=True,
                                text=True, check=True, cwd=tmp_path).stdout.split())
    assert (tmp_path / "runs" / "1" / "metrics.json").exists()
    assert not loaded & {"hashlib", "_hashlib", "psutil", "git", "pymongo", "mlflow", "tensorboard", "yaml"}


def test_public_api_names():
    import labrun

    for name in ["Experiment", "experiment", "Ingredient", "Run", "ConfigAddedError", "MissingConfigError",
                 "NamedConfigNotFoundError", "SignatureError", "LabrunError"]:
        assert getattr(labrun, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        labrun.Nope


def test_setup_cfg_declares_extras_and_console_script():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = cfg["options.extras_require"]
    for extra in ["mongo", "mlflow", "tensorboard", "gpu", "plot", "all", "test"]:
        assert extra in extras
    assert "pymongo" in extras["mongo"] and "mlflow" in extras["mlflow"] and "nvidia-ml-py" in extras["gpu"]
    assert "labrun = labrun.cli.tool:main" in cfg["options.entry_points"]["console_scripts"]
    for dep in ["wrapt", "pyyaml", "docopt-ng", "gitpython", "psutil"]:
        assert dep in cfg["options"]["install_requires"]
    assert "build-system" in (ROOT / "pyproject.toml").read_text()
    assert "[project]" not in (ROOT / "pyproject.toml").read_text()


def test_observers_folder_is_the_labrun_observers_subpackage():
    import labrun.observers

    assert (ROOT / "observers" / "__init__.py").samefile(labrun.observers.__file__)


def test_regular_install_wheel_contains_observers_subpackage(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("labrun-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "labrun/observers/__init__.py" in names
    assert "labrun/config/resolve.py" in names
    assert not any(n.startswith("observers/") for n in names)


def test_console_script_version():
    out = subprocess.run([sys.executable, "-m", "labrun", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("labrun ")


def test_each_backend_is_described_once_and_the_docs_follow():
    import re

    from labrun.recording.registry import BACKENDS, BUILTIN_SCHEMES
    from labrun.cli.options import SPEC_BY_LONG

    table = (ROOT / "docs" / "cli.md").read_text().split("## Observers by URL", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()
            if line.startswith("| ") and "---" not in line}
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    for backend in BACKENDS:
        assert backend.flag in SPEC_BY_LONG  # the option exists on the command line
        row = rows[backend.title]
        assert backend.flag in row and all(f"`{scheme}://`" in row for scheme in backend.schemes)
        assert (f"`{backend.extra}`" in row and backend.extra in cfg["options.extras_require"]) if backend.extra \
            else "(none)" in row
        assert all(BUILTIN_SCHEMES[s] is backend for s in backend.schemes)
    assert len(rows) == len(BACKENDS) + 1 and re.search(r"\| backend \| option", table)
