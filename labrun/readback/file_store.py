"""Reading runs back from a file store (Sacred's FileStorageObserver layout, see docs/observers/file.md)."""

from __future__ import annotations

import json
import os
from typing import Any

from labrun.errors import StoreReadError
from labrun.readback.stored_run import StoredRun
from labrun.suggest import did_you_mean


class FileStoreReader:
    """The runs of one file store folder."""

    def __init__(self, basedir: str):
        self.basedir = os.path.abspath(basedir)
        if not os.path.isdir(self.basedir):
            raise StoreReadError(f"cannot read the file store '{basedir}': no such folder")

    def ids(self) -> list[str]:
        """The run folders (those holding a run.json), in number order."""
        names = [e.name for e in os.scandir(self.basedir)
                 if e.is_dir() and not e.name.startswith("_") and os.path.exists(os.path.join(e.path, "run.json"))]
        return sorted(names, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))

    def run(self, run_id: Any) -> StoredRun:
        run_id = str(run_id)
        folder = os.path.join(self.basedir, run_id)
        if not os.path.exists(os.path.join(folder, "run.json")):
            ids = self.ids()
            known = f"runs there: {', '.join(ids[-10:])}" if ids else "it holds no runs"
            raise StoreReadError(f"no run '{run_id}' in the file store {self.basedir}{did_you_mean(run_id, ids)}; "
                                 f"{known}")
        record = _read_json(os.path.join(folder, "run.json"))
        config_path = os.path.join(folder, "config.json")
        config = _read_json(config_path) if os.path.exists(config_path) else {}
        sources = {}
        for entry in record.get("experiment", {}).get("sources", []):
            if isinstance(entry, list) and len(entry) == 2 and os.path.exists(os.path.join(self.basedir, entry[1])):
                sources[entry[0]] = os.path.join(self.basedir, entry[1])
        return StoredRun(run_id=int(run_id) if run_id.isdigit() else run_id, store=self.basedir, record=record,
                         config=config, sources=sources, final_metrics=_final_metrics(folder),
                         observer_args=["-F", self.basedir], store_url=self.basedir)

    def records(self, experiment: str | None = None, command: str | None = None) -> list[dict[str, Any]]:
        """Every run's record (run.json) with ``id`` and ``config``, oldest first; those of ``experiment``
        and ``command`` only when given. A folder being written or damaged is skipped."""
        out = []
        for run_id in self.ids():
            folder = os.path.join(self.basedir, run_id)
            try:
                record = _read_json(os.path.join(folder, "run.json"))
                if (experiment is not None and record.get("experiment", {}).get("name") != experiment) or \
                        (command is not None and record.get("command") != command):
                    continue
                config_path = os.path.join(folder, "config.json")
                record["config"] = _read_json(config_path) if os.path.exists(config_path) else {}
            except StoreReadError:
                continue
            record["id"] = int(run_id) if run_id.isdigit() else run_id
            out.append(record)
        return out

    def final_metrics(self, run_id: Any) -> dict[str, float]:
        """Each metric's last value."""
        return _final_metrics(os.path.join(self.basedir, str(run_id)))

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


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise StoreReadError(f"cannot read {path}: {exc}") from None


def _final_metrics(folder: str) -> dict[str, float]:
    """Each metric's last value: from metrics.jsonl (labrun, also after a crash), else Sacred's metrics.json."""
    if os.path.exists(os.path.join(folder, "metrics.jsonl")):
        from labrun.observers.file_metrics import read_metrics

        return {name: series["values"][-1] for name, series in read_metrics(folder).items() if series["values"]}
    path = os.path.join(folder, "metrics.json")
    if not os.path.exists(path):
        return {}
    return {name: series["values"][-1] for name, series in _read_json(path).items() if series.get("values")}
