"""What every launcher that starts runs on other machines shares: checking that the workers can reach the
stores, copying the code, and turning a local task into what a worker starts.
"""

from __future__ import annotations

import os
from typing import Sequence

from labrun._util.env_vars import JOURNAL_DIR_ENV
from labrun.errors import CommandLineError
from labrun.sweeps.launchers import SweepSetup, Task
from labrun.sweeps.worker import RemoteTask

#: Filesystem types whose folders every machine of a cluster sees (as /proc/mounts names them).
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "beegfs", "ceph", "fuse.ceph",
                       "fuse.cephfs", "glusterfs", "fuse.glusterfs", "panfs", "wekafs", "fuse.sshfs", "9p",
                       "fuse.juicefs", "fuse.s3fs", "afs", "orangefs", "quobyte"}
#: The forms ``shared_fs=`` accepts.
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def flag_option(options: dict[str, str], name: str, launcher: str) -> bool:
    """An on/off launcher option (``shared_fs=true``); a clear error for anything else."""
    value = options.get(name, "false").strip().lower()
    if value not in TRUE_WORDS + FALSE_WORDS:
        raise CommandLineError(f"--launcher {launcher}:{name}={options[name]}: write {name}=true or {name}=false")
    return value in TRUE_WORDS


def store_folder(url: str) -> str | None:
    """The local folder (or database file) a store URL writes to; None for a store reached over the network."""
    from labrun.stores.mlflow_format import tracking_uri

    scheme, sep, rest = url.partition("://")
    if not sep:
        return None  # an observer object of the script's own, described by its class name
    if scheme.lower() in ("file", "tensorboard"):
        return os.path.abspath(rest)
    if scheme.lower() in ("mlflow+file", "mlflow+sqlite"):
        return "/" + tracking_uri(url).split("://", 1)[1].lstrip("/")
    return None


def filesystem_type(path: str) -> str:
    """The type of the filesystem holding ``path`` (the longest mount point above it in /proc/mounts)."""
    path = os.path.realpath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = parts[1].replace("\\040", " ")
                if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                    best, kind = point, parts[2]
    except OSError:
        pass
    return kind


def check_stores_reachable(launcher: str, urls: Sequence[str], shared_fs: bool, *,
                           extra_folders: Sequence[str] = ()) -> None:
    """Refuse, before any run starts, a store the workers could not write to: a local folder, unless it is
    on a network filesystem or the cluster shares this machine's folders (``shared_fs``: the user vouches
    for it, or every worker is this machine). A run recorded to a folder only its worker sees would be lost
    to the user."""
    if shared_fs:
        return
    for what, folder in [*((u, store_folder(u)) for u in urls), *((f, f) for f in extra_folders)]:
        if folder is None:
            continue
        kind = filesystem_type(folder)
        if kind in NETWORK_FILESYSTEMS:
            continue
        from labrun._util.redact import redact_url

        raise CommandLineError(
            f"--launcher {launcher}: the runs record to {redact_url(what)}, a folder on this machine "
            f"({kind} filesystem), which the cluster's workers may not see, so their runs would be lost to you. "
            f"Use a store every worker reaches (-m mongodb://HOST:27017/sacred, --mlflow http://HOST:5000), or, "
            f"when the folder is on a filesystem all workers share, say so: --launcher {launcher}:shared_fs=true")


def snapshot_code(setup: SweepSetup, dest: str) -> None:
    """Copy the experiment's code into ``dest`` for the workers (provenance/code_snapshot.py), leaving out
    the sweep's stores, the journal and the sweep folders, which may lie inside the experiment's folder."""
    from labrun.provenance.code_snapshot import take_snapshot
    from labrun.recording.journal import journal_root

    journal = os.path.abspath(journal_root())
    exclude = [f for f in map(store_folder, setup.store_urls) if f]
    take_snapshot(setup.code_dir, dest, exclude=[*exclude, journal, os.path.dirname(os.path.abspath(setup.folder))])


def remote_task(task: Task, setup: SweepSetup, shared_fs: bool, log: str | None) -> RemoteTask:
    """``task`` as a worker starts it: its command line without the interpreter (the worker uses its own),
    and its environment with this shell's ``LABRUN_*`` settings, so the run gets them on its worker as it
    would here (the journal folder only with a shared filesystem: it is a path on this machine)."""
    forwarded = {k: v for k, v in os.environ.items() if k.startswith("LABRUN_") and (shared_fs or k != JOURNAL_DIR_ENV)}
    return RemoteTask(index=task.index, args=task.argv[1:], env={**forwarded, **task.env}, cwd=task.cwd,
                      origin=os.path.abspath(setup.code_dir), shared_fs=shared_fs, log=log)
