"""Servers the tests start on 127.0.0.1 and always stop: SecantusDB (a MongoDB wire-protocol server), and
any other server process (TensorBoard, MLflow, Omniboard) through ``server_process``.

``LABRUN_TEST_MONGO_URL`` points the MongoDB tests at another server instead (the tests that stop and
restart a server always start their own).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Iterator, Sequence

URL_ENV = "LABRUN_TEST_MONGO_URL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SecantusServer:
    """``python -m secantus`` on 127.0.0.1; started and stopped by the test that owns it."""

    def __init__(self, storage: str, port: int | None = None):
        self.storage = storage
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(os.path.dirname(storage), f"secantus-{self.port}.log")

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "SecantusServer":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(self.port),
             "--storage-path", self.storage, "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SecantusDB exited with {self.process.returncode}: {self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"SecantusDB did not listen on port {self.port} within {timeout} s: {self._log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""


def stop_process(process: subprocess.Popen) -> None:
    """Terminate, and kill if it does not end within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def server_process(args: Sequence[str], ready_url: str, timeout: float = 90, env: dict | None = None,
                   log_path: str = os.devnull) -> Iterator[subprocess.Popen]:
    """A server process that answers ``ready_url`` within ``timeout`` seconds; stopped when the block ends."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    urllib.request.urlopen(ready_url, timeout=2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{' '.join(args[:4])} did not answer {ready_url} (see {log_path})") from None
                    time.sleep(0.3)
            yield process
        finally:
            stop_process(process)
