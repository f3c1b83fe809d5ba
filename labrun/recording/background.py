"""Background delivery: what a run's observers had not confirmed when its process ended is delivered by a
detached ``labrun sync`` of that one journal, so that the user's process exits promptly and nobody has to
remember a command.

The delivery runs in a new session (``setsid``): closing the terminal or ending the shell does not stop it.
It retries a store that is down for up to ``RETRY_FOR`` seconds, then leaves the journal for ``labrun sync``.
Its log is ``<journal folder>.log``. ``LABRUN_BACKGROUND_DELIVERY=0`` turns it off, for batch systems that
end every process of a job when the job ends (docs/journal.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence

from labrun._util.atomic_file import private_opener
from labrun._util.env_vars import BACKGROUND_DELIVERY_ENV, SYNC_URLS_ENV

RETRY_FOR = 3600.0  # seconds a background delivery keeps retrying a store that is down


def enabled() -> bool:
    return os.environ.get(BACKGROUND_DELIVERY_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def log_path(folder: str) -> str:
    """Beside the journal folder, so it outlives the journal it reports on."""
    return folder.rstrip(os.sep) + ".log"


def deliver_in_background(folder: str, urls: Sequence[str]) -> tuple[int, str] | None:
    """Start a detached ``labrun sync`` of the journal in ``folder``; its pid and log, or None when
    background delivery is turned off or cannot start (then `labrun sync` is the way)."""
    if not enabled() or not hasattr(os, "setsid"):
        return None
    log = log_path(folder)
    root, uid = os.path.split(folder.rstrip(os.sep))
    command = [sys.executable, "-m", "labrun", "sync", f"--journal={root}", f"--retry-for={RETRY_FOR:.0f}",
               uid]
    env = {**os.environ, SYNC_URLS_ENV: "\n".join(urls)}
    try:
        with open(log, "ab", opener=private_opener) as out:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True, close_fds=True, env=env)
    except OSError:
        return None
    return process.pid, log
