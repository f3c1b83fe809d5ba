"""Omniboard 2.16.1, installed from npm, lists runs labrun recorded: config, status and metrics.

Needs Node and npm; run it with ``python -m pytest -q -m omniboard tests`` (README's test command leaves it
out). Omniboard is installed once into $LABRUN_OMNIBOARD_DIR (default ~/.cache/labrun-tests/omniboard-2.16.1).
"""

import contextlib
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import psutil
import pytest
from servers import free_port, server_process

pytestmark = pytest.mark.omniboard
VERSION = "2.16.1"

SCRIPT = """
from labrun import Experiment
ex = Experiment("omni")

@ex.config
def cfg():
    lr = 0.01
    fail = False

@ex.main
def main(lr, fail, _run):
    for i in range(20):
        _run.log_scalar("train.loss", 1.0 / (i + 1))
    if fail:
        raise RuntimeError("diverged")
    return lr * 2

ex.run_commandline()
"""


@pytest.fixture(scope="module")
def omniboard_entry():
    if not shutil.which("npm") or not shutil.which("node"):
        pytest.skip("Node and npm are needed to install Omniboard")
    folder = Path(os.environ.get("LABRUN_OMNIBOARD_DIR",
                                 Path.home() / ".cache" / "labrun-tests" / f"omniboard-{VERSION}"))
    entry = folder / "node_modules" / "omniboard" / "dist" / "start.js"
    if not entry.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder), f"omniboard@{VERSION}"],
                       check=True, capture_output=True, timeout=900)
    return entry


@contextlib.contextmanager
def omniboard_server(entry, mongo_url, tmp_path):
    """Omniboard on a free loopback port (the shim keeps it off other interfaces); (process, its root URL)."""
    port = free_port()
    shim = Path(__file__).with_name("loopback_only.js")
    root = f"http://127.0.0.1:{port}/sacred"
    args = ["node", "--require", str(shim), str(entry), "--mu", mongo_url]
    with server_process(args, f"{root}/api/v1/Runs", timeout=60, env={**os.environ, "PORT": str(port)},
                        log_path=str(tmp_path / "omniboard.log")) as process:
        yield process, root


def get_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def test_omniboard_lists_runs_with_config_status_and_metrics(omniboard_entry, script, mongo_url, tmp_path):
    exp = script(SCRIPT)
    assert exp.run("-m", mongo_url, "with", "lr=0.5").returncode == 0
    assert exp.run("-m", mongo_url, "with", "fail=True").returncode == 1
    with omniboard_server(omniboard_entry, mongo_url, tmp_path) as (omniboard, root):
        base = f"{root}/api/v1"
        runs = get_json(f"{base}/Runs?select=config,status,experiment,heartbeat,start_time")
        listening = [c.laddr for c in psutil.Process(omniboard.pid).net_connections("tcp") if c.status == "LISTEN"]
        assert listening and all(address.ip == "127.0.0.1" for address in listening)
        by_id = {run["_id"]: run for run in runs}
        assert set(by_id) == {1, 2}
        assert by_id[1]["status"] == "COMPLETED" and by_id[1]["config"]["lr"] == 0.5
        assert by_id[2]["status"] == "FAILED" and by_id[2]["experiment"]["name"] == "omni"
        metrics = get_json(f"{base}/Metrics?query=" + urllib.request.quote('{"run_id":"1"}'))
        loss = next(m for m in metrics if m["name"] == "train.loss")
        assert loss["steps"] == list(range(20)) and loss["values"][-1] == pytest.approx(0.05)
        # the runs table's metric column: Omniboard joins info.metrics to the metrics collection
        detail = get_json(f"{base}/Runs/1?select=info,captured_out")
        assert any(ref["name"] == "train.loss" for ref in detail["info"]["metrics"])


def test_omniboard_shows_the_whole_curve_of_a_million_point_metric(omniboard_entry, script, mongo_url, tmp_path):
    """Omniboard keys metric documents by name: labrun writes one per metric, holding the whole curve."""
    exp = script("""
        from labrun import Experiment
        ex = Experiment("long")

        @ex.main
        def main(_run):
            for i in range(1_000_000):
                _run.log_scalar("loss", 1.0 / (1 + i) if i != 400_000 else 50.0)

        ex.run_commandline()
    """)
    proc = exp.run("-m", mongo_url, timeout=600)
    assert proc.returncode == 0, proc.stderr
    import pymongo

    client = pymongo.MongoClient(mongo_url)
    db = client.get_default_database()
    db["omniboard.metric.columns"].insert_many([
        {"name": "loss_max", "metric_name": "loss", "extrema": "max"},
        {"name": "loss_min", "metric_name": "loss", "extrema": "min"},
        {"name": "loss_last", "metric_name": "loss", "extrema": "last"}])
    client.close()
    with omniboard_server(omniboard_entry, mongo_url, tmp_path) as (_, root):
        base = f"{root}/api/v1"
        metrics = get_json(f"{base}/Metrics?query=" + urllib.request.quote('{"run_id":"1"}'), timeout=60)
        (loss,) = [m for m in metrics if m["name"] == "loss"]
        assert loss["steps"][0] == 0 and loss["steps"][-1] == 999_999 and len(loss["steps"]) <= 16_384
        assert 50.0 in loss["values"]  # the spike at step 400,000 is kept
        (row,) = get_json(f"{base}/Runs?select=loss_max,loss_min,loss_last", timeout=60)
        assert row["loss_max"] == 50.0
        assert row["loss_min"] == pytest.approx(1.0 / 1_000_000)
        assert row["loss_last"] == pytest.approx(1.0 / 1_000_000)


def test_omniboard_downloads_and_previews_artifacts_with_folders(omniboard_entry, script, mongo_url, tmp_path):
    """An artifact stored as plots/cm.png is listed under a name Omniboard's one-segment routes accept."""
    exp = script("""
        import os, tempfile
        from labrun import Experiment
        ex = Experiment("art")

        @ex.main
        def main(_run):
            folder = tempfile.mkdtemp()
            for name, data in (("cm.png", b"\\x89PNG folder"), ("flat.txt", b"flat")):
                path = os.path.join(folder, name)
                with open(path, "wb") as f:
                    f.write(data)
            _run.add_artifact(os.path.join(folder, "cm.png"), "plots/cm.png")
            _run.add_artifact(os.path.join(folder, "flat.txt"))

        ex.run_commandline()
    """)
    assert exp.run("-m", mongo_url).returncode == 0
    with omniboard_server(omniboard_entry, mongo_url, tmp_path) as (_, root):
        run = get_json(f"{root}/api/v1/Runs/1?select=artifacts")
        by_name = {a["name"]: a for a in run["artifacts"]}
        assert set(by_name) == {"plots__cm.png", "flat.txt"}
        expected = (("plots__cm.png", b"\x89PNG folder", "image/png"), ("flat.txt", b"flat", "text/plain"))
        for name, data, kind in expected:
            file_id = by_name[name]["file_id"]
            for route in (f"files/download/{file_id}/{name}", f"files/preview/{file_id}/{name}"):
                with urllib.request.urlopen(f"{root}/api/v1/{route}", timeout=10) as response:
                    assert response.read() == data, route  # the file, not Omniboard's index page
                    assert response.headers["Content-Type"].startswith(kind)
    from labrun import open_store

    stored = open_store(mongo_url).run(1)
    assert sorted(stored.artifacts) == ["flat.txt", "plots/cm.png"]  # labrun keeps the real names
    assert stored.open_artifact("plots/cm.png").read() == b"\x89PNG folder"
