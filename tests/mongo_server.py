"""A real MongoDB wire-protocol server for the tests: SecantusDB on a free loopback port.

``LABRUN_TEST_MONGO_URL`` points the tests at another server instead (the tests that stop and restart a
server always start their own).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

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
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""
