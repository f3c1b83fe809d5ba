"""Writing files so that a reader, or a crash, never sees half of one."""

from __future__ import annotations

import json
import os
from typing import Any


def write_atomic(path: str, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, default=str) + "\n")
