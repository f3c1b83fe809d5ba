"""Reading runs back from a file store (Sacred's FileStorageObserver layout, see docs/observers/file.md)."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from labrun.errors import StoreReadError
from labrun.readback.store import RunStore, no_cyclic_gc
from labrun.stores.metric_stats import RECORD_KEY
from labrun.readback.stored_run import StoredRun, summarise
from labrun._util.suggest import did_you_mean


class FileStoreReader(RunStore):
    """The runs of one file store folder."""

    def __init__(self, basedir: str):
        self.basedir = os.path.abspath(basedir)
        if not os.path.isdir(self.basedir):
            raise StoreReadError(f"cannot read the file store '{basedir}': no such folder")
        self.label = self.url = self.basedir
        self.observer_args = ["-F", self.basedir]

    def ids(self) -> list[str]:
        """The run folders (those holding a run.json), in number order."""
        names = [e.name for e in os.scandir(self.basedir)
                 if e.is_dir() and not e.name.startswith("_") and os.path.exists(os.path.join(e.path, "run.json"))]
        return sorted(names, key=_order)

    def all_runs(self) -> list[StoredRun]:
        """Every run with its record and config, oldest first: one file per run (run.json, which holds the
        summary of each metric and a copy of the config), never its metrics. A folder being written or
        damaged is skipped."""
        runs = []
        with no_cyclic_gc():
            names = sorted((e.name for e in os.scandir(self.basedir) if not e.name.startswith("_")), key=_order)
            base = self.basedir + os.sep
            for name in names:
                try:
                    with open(base + name + os.sep + "run.json", "rb") as f:
                        record = summarise(json.loads(f.read().decode("utf-8")))
                except (OSError, ValueError):
                    continue  # not a run folder, or one being written or damaged
                # labrun keeps a copy of the config in run.json; config.json is read for other runs only
                config = (record.get(RECORD_KEY) or {}).pop("config", None)
                runs.append(StoredRun(self, _typed_id(name), record, config, complete=False))
        return runs

    def records(self, experiment: str | None = None, command: str | None = None) -> list[dict[str, Any]]:
        """Every run's record (run.json) with ``id`` and ``config``, oldest first; those of ``experiment``
        and ``command`` only when given."""
        out = []
        for run in self.all_runs():
            if (experiment is None or run.experiment == experiment) and \
                    (command is None or run.record.get("command") == command):
                out.append({**run.summary, "id": run.id, "config": run.config})
        return out

    def run(self, run_id: Any) -> StoredRun:
        run_id = str(run_id)
        folder = os.path.join(self.basedir, run_id)
        if not os.path.exists(os.path.join(folder, "run.json")):
            ids = self.ids()
            known = f"runs there: {', '.join(ids[-10:])}" if ids else "it holds no runs"
            raise StoreReadError(f"no run '{run_id}' in the file store {self.basedir}{did_you_mean(run_id, ids)}; "
                                 f"{known}")
        return StoredRun(self, _typed_id(run_id), _read_json(os.path.join(folder, "run.json")))

    def record(self, run_id: Any) -> dict[str, Any]:
        """The whole run.json."""
        return _read_json(os.path.join(self.basedir, str(run_id), "run.json"))

    def config(self, run_id: Any) -> dict[str, Any]:
        path = os.path.join(self.basedir, str(run_id), "config.json")
        return _read_json(path) if os.path.exists(path) else {}

    def info(self, run_id: Any, record: dict[str, Any]) -> dict[str, Any]:
        path = os.path.join(self.basedir, str(run_id), "info.json")
        return _read_json(path) if os.path.exists(path) else {}

    def metrics(self, run_id: Any) -> dict[str, dict[str, Any]]:
        """Every point of every metric: from metrics.jsonl (labrun, also after a crash), else Sacred's
        metrics.json."""
        folder = os.path.join(self.basedir, str(run_id))
        if os.path.exists(os.path.join(folder, "metrics.jsonl")):
            from labrun.stores.metrics_file import read_metrics

            return read_metrics(folder)
        path = os.path.join(folder, "metrics.json")
        return _read_json(path) if os.path.exists(path) else {}

    def final_metrics(self, run_id: Any) -> dict[str, float]:
        """Each metric's last value."""
        return self.run(run_id).final_metrics

    def output(self, run_id: Any) -> str:
        try:
            with open(os.path.join(self.basedir, str(run_id), "cout.txt"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def artifact_path(self, run_id: Any, name: str) -> str:
        return os.path.join(self.basedir, str(run_id), name)

    def artifact_size(self, run_id: Any, name: str) -> int | None:
        try:
            return os.path.getsize(self.artifact_path(run_id, name))
        except OSError:
            return None

    def resource_size(self, entry: list[str]) -> int | None:
        """The size of a resource's stored copy (``[path, "_resources/..."]``)."""
        try:
            return os.path.getsize(os.path.join(self.basedir, entry[1]))
        except (OSError, IndexError, TypeError):
            return None

    def source_files(self, run_id: Any, record: dict[str, Any]) -> dict[str, str]:
        sources = {}
        for entry in record.get("experiment", {}).get("sources", []):
            if isinstance(entry, list) and len(entry) == 2 and os.path.exists(os.path.join(self.basedir, entry[1])):
                sources[entry[0]] = os.path.join(self.basedir, entry[1])
        return sources

    def source_hashes(self, run_id: Any, record: dict[str, Any]) -> dict[str, str]:
        """From the stored names, ``_sources/<stem>_<md5><ext>``, as run.json lists them."""
        hashes = {}
        for entry in record.get("experiment", {}).get("sources", []):
            if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str):
                found = re.search(r"_([0-9a-f]{32})(\.[^/]*)?$", entry[1])
                if found:
                    hashes[entry[0]] = found.group(1)
        return hashes

    def find_uid(self, uid: str) -> StoredRun | None:
        """The run recorded with ``uid`` (newest folders first), or None."""
        for run_id in reversed(self.ids()):
            try:
                with open(os.path.join(self.basedir, run_id, "run.json"), encoding="utf-8") as f:
                    if json.load(f).get("uid") == uid:
                        return self.run(run_id)
            except (OSError, ValueError):
                continue
        return None


def _order(name: str) -> tuple[bool, int, str]:
    """Numbered runs first, by number, then any others by name."""
    return (not name.isdigit(), int(name) if name.isdigit() else 0, name)


def _typed_id(run_id: str) -> Any:
    return int(run_id) if run_id.isdigit() else run_id


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise StoreReadError(f"cannot read {path}: {exc}") from None
