"""Reading runs back from a MongoDB store (the layout in docs/observers/mongodb.md, Sacred's included)."""

from __future__ import annotations

import atexit
import datetime as _dt
import os
import shutil
import tempfile
from typing import Any

from labrun.errors import StoreReadError
from labrun.stores.mongo_format import decode_keys, join_parts, parse_mongo_url
from labrun.readback.store import RunStore, no_cyclic_gc
from labrun.readback.stored_run import StoredRun, summarise
from labrun._util.redact import redact_url
from labrun._util.suggest import did_you_mean

TIMEOUT_MS = 5000
# what listing runs reads of each document, nothing bulky (StoredRun.record reads the rest when asked); an
# inclusion, as SecantusDB applies an exclusion of nested fields far more slowly
SUMMARY_PROJECTION = {field: 1 for field in (
    "uid", "command", "host", "meta", "status", "start_time", "stop_time", "heartbeat", "result", "artifacts",
    "info", "config", "labrun", "experiment.name", "experiment.mainfile", "experiment.base_dir",
    "experiment.repositories.path", "experiment.repositories.commit", "experiment.repositories.branch",
    "experiment.repositories.dirty", "experiment.repositories.url")}


class MongoStoreReader(RunStore):
    """The runs of one MongoDB database: listed, read whole (metrics, artifacts, sources), found by uid."""

    def __init__(self, url: str):
        try:
            self.location = parse_mongo_url(url)
        except ValueError as exc:
            raise StoreReadError(f"cannot read '{redact_url(url)}': {exc}") from None
        self.url = url
        self.label = redact_url(self.location.url)
        self.observer_args = ["-m", url]
        import pymongo

        self._client: Any = pymongo.MongoClient(self.location.client_url, serverSelectionTimeoutMS=TIMEOUT_MS,
                                           connectTimeoutMS=TIMEOUT_MS, appname="labrun-reader")
        self._db = self._client[self.location.db_name]
        self._scratch: str | None = None

    def close(self) -> None:
        self._client.close()

    def _query(self, action: Any) -> Any:
        from pymongo.errors import PyMongoError

        try:
            return action()
        except PyMongoError as exc:
            raise StoreReadError(f"cannot read the MongoDB store {self.label}: {type(exc).__name__}: {exc}") \
                from None

    def ids(self) -> list[Any]:
        """Every run's id, in order."""
        runs = self._db[self.location.runs]
        return self._query(lambda: [d["_id"] for d in runs.find({}, {"_id": 1}).sort("_id", 1)])

    def all_runs(self, query: dict[str, Any] | None = None) -> list[StoredRun]:
        """Every run (or those matching ``query``) in one query, oldest first, without captured output: each
        metric's summary is in the run document, so no metric is read."""
        runs = self._db[self.location.runs]
        with no_cyclic_gc():
            found = self._query(lambda: list(runs.find(query or {}, SUMMARY_PROJECTION).sort("_id", 1)))
            return [self._stored_run(doc, complete=False) for doc in found]

    def record(self, run_id: Any) -> dict[str, Any]:
        """The whole run document, as a file store's run.json holds it."""
        doc = self._query(lambda: self._db[self.location.runs].find_one({"_id": run_id}, {"captured_out": 0}))
        if doc is None:
            raise StoreReadError(f"no run '{run_id}' in the MongoDB store {self.label}")
        return self._stored_run(doc).record

    def records(self, experiment: str | None = None, command: str | None = None) -> list[dict[str, Any]]:
        """Every run's document (without its captured output) with ``id`` and ``config``, oldest first;
        those of ``experiment`` and ``command`` only when given."""
        query: dict[str, Any] = {}
        if experiment is not None:
            query["experiment.name"] = experiment
        if command is not None:
            query["command"] = command
        return [{**run.summary, "id": run.id, "config": run.config} for run in self.all_runs(query)]

    def run(self, run_id: Any) -> StoredRun:
        """One run with its config, final metric values and stored sources."""
        key = int(run_id) if str(run_id).isdigit() else run_id
        runs = self._db[self.location.runs]
        doc = self._query(lambda: runs.find_one({"_id": key}))
        if doc is None:
            ids = [str(i) for i in self.ids()]
            known = f"runs there: {', '.join(ids[-10:])}" if ids else "it holds no runs"
            raise StoreReadError(f"no run '{run_id}' in the MongoDB store {self.label}"
                                 f"{did_you_mean(str(run_id), ids)}; {known}")
        return self._stored_run(doc)

    def find_uid(self, uid: str) -> StoredRun | None:
        runs = self._db[self.location.runs]
        doc = self._query(lambda: runs.find_one({"uid": uid}))
        return self._stored_run(doc) if doc is not None else None

    def metrics(self, run_id: Any) -> dict[str, dict[str, list]]:
        """Every point of every metric of a run, its parts put together."""
        metrics, points = self._db[self.location.metrics], self._db[self.location.points]
        system = self._db[self.location.system]

        def read() -> dict[str, dict[str, list]]:
            documents = list(metrics.find({"run_id": run_id})) + list(system.find({"run_id": run_id}))
            joined = join_parts(d for d in documents if not d.get("downsampled"))
            if any(d.get("downsampled") for d in documents):  # the whole curve is in its parts
                joined.update(join_parts(points.find({"run_id": run_id, "name": {"$in": [
                    d["name"] for d in documents if d.get("downsampled")]}})))
            return joined

        return self._query(read)

    def final_metrics(self, run_id: Any) -> dict[str, float]:
        """Each metric's last value, read from its newest part alone (not every point of every metric)."""
        metrics = self._db[self.location.metrics]
        newest: dict[str, tuple[int, list]] = {}
        for doc in self._query(lambda: list(metrics.find({"run_id": run_id},
                                                         {"name": 1, "part": 1, "values": {"$slice": -1}}))):
            part = doc.get("part", 0)
            if doc["name"] not in newest or part > newest[doc["name"]][0]:
                newest[doc["name"]] = (part, doc.get("values") or [])
        return {name: values[-1] for name, (_part, values) in newest.items() if values}

    def artifact(self, run_id: Any, name: str) -> bytes:
        """The content of one artifact."""
        import gridfs

        doc = self._query(lambda: self._db[self.location.runs].find_one({"_id": run_id}, {"artifacts": 1}))
        file_id = _artifact_file(doc, name)
        if file_id is None:
            raise StoreReadError(f"run {run_id} of {self.label} has no artifact '{name}'")
        return self._query(lambda: gridfs.GridFS(self._db).get(file_id).read())

    def output(self, run_id: Any) -> str:
        """The run's whole captured output (the run document keeps only its end)."""
        import gridfs

        doc = self._query(lambda: self._db[self.location.runs].find_one(
            {"_id": run_id}, {"captured_out": 1, "captured_out_file": 1}))
        if doc is None:
            raise StoreReadError(f"no run '{run_id}' in the MongoDB store {self.label}")
        if doc.get("captured_out_file") is None:
            return doc.get("captured_out") or ""
        data = self._query(lambda: gridfs.GridFS(self._db).get(doc["captured_out_file"]).read())
        return data.decode("utf-8", "replace")

    def _stored_run(self, doc: dict[str, Any], complete: bool = True) -> StoredRun:
        record = _plain(decode_keys({k: v for k, v in doc.items() if k != "_id"}))
        if complete:
            record["environment"] = record.get("experiment", {}).pop("environment", {})
        config = record.pop("config", {})
        return StoredRun(self, doc["_id"], record if complete else summarise(record), config, complete=complete)

    def config(self, run_id: Any) -> dict[str, Any]:
        doc = self._query(lambda: self._db[self.location.runs].find_one({"_id": run_id}, {"config": 1}))
        return decode_keys((doc or {}).get("config") or {})

    def info(self, run_id: Any, record: dict[str, Any]) -> dict[str, Any]:
        if "info" in record:
            return record["info"] or {}
        doc = self._query(lambda: self._db[self.location.runs].find_one({"_id": run_id}, {"info": 1}))
        return _plain(decode_keys((doc or {}).get("info") or {}))

    def artifact_path(self, run_id: Any, name: str) -> str:
        """The artifact, downloaded once into a temporary folder removed when the process exits."""
        from labrun.stores.artifact_names import check_artifact_name

        target = os.path.join(self._scratch_folder(), "artifacts", str(run_id), check_artifact_name(name))
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target + ".part", "wb") as f:
                f.write(self.artifact(run_id, name))
            os.replace(target + ".part", target)
        return target

    def artifact_size(self, run_id: Any, name: str) -> int | None:
        doc = self._query(lambda: self._db[self.location.runs].find_one({"_id": run_id}, {"artifacts": 1}))
        file_id = _artifact_file(doc, name)
        if file_id is None:
            return None
        found = self._query(lambda: self._db["fs.files"].find_one({"_id": file_id}, {"length": 1}))
        return (found or {}).get("length")

    def resource_size(self, entry: list[str]) -> int | None:
        """The size of a resource's stored copy (``[path, md5]``: stored once per content)."""
        found = self._query(lambda: self._db["fs.files"].find_one({"md5": entry[1]}, {"length": 1}))
        return (found or {}).get("length")

    def source_files(self, run_id: Any, record: dict[str, Any]) -> dict[str, str]:
        doc = self._query(lambda: self._db[self.location.runs].find_one({"_id": run_id}, {"experiment.sources": 1}))
        return self._download_sources(run_id, ((doc or {}).get("experiment") or {}).get("sources", []))

    def source_hashes(self, run_id: Any, record: dict[str, Any]) -> dict[str, str]:
        """The md5 GridFS holds for each source file (stored with it when the run stored it)."""
        doc = self._query(lambda: self._db[self.location.runs].find_one({"_id": run_id}, {"experiment.sources": 1}))
        entries = ((doc or {}).get("experiment") or {}).get("sources", [])
        ids = [file_id for _, file_id in entries]
        files = {f["_id"]: f.get("md5") for f in self._query(
            lambda: list(self._db["fs.files"].find({"_id": {"$in": ids}}, {"md5": 1})))}
        return {path: files[file_id] for path, file_id in entries if files.get(file_id)}

    def _scratch_folder(self) -> str:
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="labrun-mongo-")
            atexit.register(shutil.rmtree, self._scratch, True)
        return self._scratch

    def _download_sources(self, run_id: Any, entries: list[Any]) -> dict[str, str]:
        """The run's source files, written to a temporary folder removed when the process exits."""
        import gridfs

        if not entries:
            return {}
        fs = gridfs.GridFS(self._db)
        folder = os.path.join(self._scratch_folder(), "sources", str(run_id))
        sources = {}
        for n, (path, file_id) in enumerate(entries):
            target = os.path.join(folder, f"{n}-{os.path.basename(path)}")
            os.makedirs(folder, exist_ok=True)
            data = self._query(lambda: fs.get(file_id).read())  # noqa: B023 (called at once, in this iteration)
            with open(target, "wb") as f:
                f.write(data)
            sources[path] = target
        return sources


def _artifact_file(doc: dict[str, Any] | None, name: str) -> Any:
    """The GridFS id of the artifact ``name`` in a run document, or None."""
    return next((e["file_id"] for e in (doc or {}).get("artifacts", []) if (e.get("path") or e.get("name")) == name),
                None)


def _plain(value: Any) -> Any:
    """BSON values as the JSON values a file store holds: dates as ISO text, ObjectIds as text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if type(value).__name__ == "ObjectId":
        return str(value)
    return value
