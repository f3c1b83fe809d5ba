"""The file store: Sacred's FileStorageObserver layout, written safely.

    DIR/<id>/run.json, config.json, info.json   rewritten atomically (write, fsync, rename)
    DIR/<id>/metrics.jsonl                      points appended in batches while the run goes on
    DIR/<id>/metrics.json                       Sacred's format, complete when the run ends
    DIR/<id>/cout.txt                           captured output, appended
    DIR/<id>/<artifact name>                    artifacts
    DIR/_sources/, DIR/_resources/              shared by runs, deduplicated by content

Ids 1, 2, 3... are claimed with an atomic mkdir, so concurrent runs on one DIR never share a folder.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from labrun.artifact_names import check_artifact_name
from labrun.atomic_file import atomic_open, write_json_atomic
from labrun.observer import RunObserver
from labrun.metric_codec import Series, decode, encode, new_series
from labrun.recorder import iso_times


class FileStorageObserver(RunObserver):
    """Records runs in a folder, one sub-folder per run (``-F DIR``, ``-o file://DIR``)."""

    priority = 20

    def __init__(self, basedir: str):
        self.basedir = os.path.abspath(basedir)
        self.run_dir: str | None = None
        self._uid: str | None = None
        self.run_entry: dict[str, Any] = {}
        self.info: dict[str, Any] = {}

    @classmethod
    def from_url(cls, url: str) -> "FileStorageObserver":
        path = url[len("file://"):] if url.startswith("file://") else url
        return cls(path)

    def __repr__(self) -> str:
        return f"FileStorageObserver({self.basedir!r})"

    # -- events ------------------------------------------------------------------------------------------
    def started(self, record: dict[str, Any], _id: Any) -> Any:
        if self.run_dir is not None and self._uid == record["uid"]:  # a retried start keeps its folder
            _id = os.path.basename(self.run_dir)
            _id = int(_id) if _id.isdigit() else _id
        else:  # the same observer object records each new run in a new folder
            self.run_dir, _id = self._claim(_id)
            self._uid = record["uid"]
        self.run_entry = {k: v for k, v in record.items() if k not in ("config", "info")}
        self.info = record.get("info") or {}
        write_json_atomic(self._path("config.json"), record["config"])
        write_json_atomic(self._path("info.json"), self.info)
        open(self._path("cout.txt"), "a").close()
        self._save_run()
        return _id

    def metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        lines = [json.dumps({"name": name, **encode(series)}) for name, series in metrics.items()]
        with open(self._path("metrics.jsonl"), "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def heartbeat(self, info: dict[str, Any], output: str, result: Any, beat_time: str) -> None:
        self._append_output(output)
        if info != self.info:
            self.info = info
            write_json_atomic(self._path("info.json"), info)
        self.run_entry.update(heartbeat=beat_time, result=result)
        self._save_run()

    def artifact(self, name: str, path: str, metadata: Any, content_type: str | None) -> None:
        name = check_artifact_name(name)
        target = self._path(name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)
        if name not in self.run_entry["artifacts"]:
            self.run_entry["artifacts"].append(name)
        self._save_run()

    def resource(self, path: str, md5: str, stored_path: str) -> None:
        stem, ext = os.path.splitext(os.path.basename(path))
        relative = os.path.join("_resources", f"{stem}_{md5}{ext}")
        target = os.path.join(self.basedir, relative)
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(stored_path, "rb") as source, atomic_open(target, "wb") as copy:
                shutil.copyfileobj(source, copy)
        entry = [path, relative]
        if entry not in self.run_entry["resources"]:
            self.run_entry["resources"].append(entry)
        self._save_run()

    def ended(self, status: str, stop_time: str, result: Any, fail_trace: list[str] | None,
              info: dict[str, Any], output: str) -> None:
        self._append_output(output)
        write_json_atomic(self._path("info.json"), info)
        write_sacred_metrics(self._path("metrics.json"), read_metrics(self.run_dir))
        self.run_entry.update(status=status, stop_time=stop_time, heartbeat=stop_time, result=result)
        if fail_trace:
            self.run_entry["fail_trace"] = fail_trace
        self._save_run()

    # -- helpers -----------------------------------------------------------------------------------------
    def _claim(self, _id: Any) -> tuple[str, Any]:
        os.makedirs(self.basedir, exist_ok=True)
        if _id is not None:
            path = os.path.join(self.basedir, str(_id))
            try:
                os.mkdir(path)
            except FileExistsError:
                raise FileExistsError(f"run folder {path} exists already; choose another --id") from None
            return path, _id
        while True:
            numbers = [int(n) for n in os.listdir(self.basedir) if n.isdigit()]
            candidate = max(numbers, default=0) + 1
            path = os.path.join(self.basedir, str(candidate))
            try:
                os.mkdir(path)
                return path, candidate
            except FileExistsError:
                continue  # another run claimed it first: take the next one

    def _path(self, name: str) -> str:
        assert self.run_dir is not None
        return os.path.join(self.run_dir, name)

    def _save_run(self) -> None:
        write_json_atomic(self._path("run.json"), self.run_entry)

    def _append_output(self, output: str) -> None:
        if output:
            with open(self._path("cout.txt"), "a", encoding="utf-8") as f:
                f.write(output)


def read_metrics(run_dir: str) -> dict[str, Series]:
    """Every point in metrics.jsonl (also after a run was killed: a line cut short is ignored)."""
    merged: dict[str, Series] = {}
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return merged
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a line cut by a crash: everything before it is whole
            batch = json.loads(line)
            series = merged.setdefault(batch["name"], new_series())
            for field, values in decode(batch).items():
                series[field].extend(values)
    return merged


def write_sacred_metrics(path: str, metrics: dict[str, Series], chunk: int = 50_000) -> None:
    """Write Sacred's metrics.json in chunks (atomically): memory stays flat however many points."""
    with atomic_open(path) as f:
        f.write("{")
        for n, (name, series) in enumerate(metrics.items()):
            f.write(f'{"," if n else ""}\n  {json.dumps(name)}: {{')
            for m, field in enumerate(("steps", "values", "timestamps")):
                f.write(f'{"," if m else ""}\n    "{field}": [')
                values = series[field]
                for start in range(0, len(values), chunk):
                    part = values[start:start + chunk]
                    if field == "timestamps":
                        text = json.dumps(iso_times(part))
                    elif field == "steps":
                        text = json.dumps(list(map(int, part)))
                    else:
                        text = json.dumps(part.tolist())
                    f.write(("," if start else "") + text[1:-1])
                f.write("]")
            f.write("\n  }")
        f.write("\n}\n")
