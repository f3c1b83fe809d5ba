import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class Script:
    """A script written to a temporary folder and run as ``python script.py ARGS`` in that folder."""

    def __init__(self, path: Path):
        self.path = path

    def run(self, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        full_env.pop("FORCE_COLOR", None)
        if env and env.get("FORCE_COLOR"):
            full_env.pop("NO_COLOR")
            full_env["FORCE_COLOR"] = "1"
        return subprocess.run([sys.executable, str(self.path), *args], cwd=self.path.parent, env=full_env,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def root_log_level():
    """A run's -l sets the root logger's level, as in Sacred; one test's level must not hide the next
    test's messages."""
    import logging

    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture(autouse=True)
def private_journal(tmp_path, monkeypatch):
    """Each test journals into its own folder. A run's end waits for its observers to confirm everything,
    however slow this machine is: the bound is only a hang guard. No background delivery outlives a test
    (the tests of it turn it on and stop it themselves)."""
    monkeypatch.setenv("LABRUN_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("LABRUN_DELIVERY_TIMEOUT", "600")
    monkeypatch.setenv("LABRUN_BACKGROUND_DELIVERY", "0")


@pytest.fixture
def script(tmp_path):
    """Write a script from source text and return a runner for it."""
    def make(source: str, name: str = "exp.py") -> Script:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return Script(path)

    return make


@pytest.fixture(scope="session")
def mongo_server_url(tmp_path_factory):
    """A MongoDB server for the whole session: $LABRUN_TEST_MONGO_URL, else SecantusDB started here."""
    from servers import URL_ENV, SecantusServer

    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV].rstrip("/")
        return
    server = SecantusServer(str(tmp_path_factory.mktemp("secantus") / "data")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def mongo_url(mongo_server_url, request):
    """A fresh database on the session's server, named after the test."""
    import re

    name = "t_" + re.sub(r"[^A-Za-z0-9]", "_", request.node.name)[:40] + "_" + os.urandom(3).hex()
    return f"{mongo_server_url}/{name}"
