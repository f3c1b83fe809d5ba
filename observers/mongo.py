"""The MongoDB store: Sacred's MongoObserver layout, which Omniboard reads, without its limits.

    runs            one document per run, integer _id (max + 1, retried on a duplicate key)
    metrics         one document per (run, metric), grown with batched $push/$each; parts beyond 250,000 points
    fs.files/chunks GridFS: sources and resources (once per content), artifacts, the whole captured output

Every method is safe to repeat after a failure (the dispatcher retries it with the same content): metric
pushes are conditional on the document's point count, files are looked up before they are uploaded, and
lists grow with $addToSet. pymongo is imported in the delivery thread, when the first run starts.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import mimetypes
from typing import Any

from labrun.metric_codec import caught_up, unseen_points
from labrun.mongo_format import (MAX_POINTS_PER_DOCUMENT, encode_keys, parse_mongo_url, url_options)
from labrun.observer import RunObserver, id_asked_for, require_package
from labrun.redact import redact_url

logger = logging.getLogger("labrun.mongo")
FORMAT = "MongoObserver-0.7.0"  # Sacred's format tag: readers of Sacred's runs accept the documents
CONNECT_TIMEOUT_MS = 3000  # a dead database costs a run's start at most this; the journal keeps the rest
OUTPUT_TAIL = 1 << 20  # characters of output kept in the run document; the whole output is a GridFS file
AUTHENTICATION_FAILED = 18  # the server's error code
CHUNK_SIZE = 255 * 1024  # GridFS's default chunk size
_EPOCH = _dt.datetime(1970, 1, 1)
_seconds = functools.partial(_dt.timedelta, 0)


def _dates(stamps: Any) -> list[_dt.datetime]:
    """POSIX seconds as naive UTC datetimes (BSON dates), without a Python-level loop."""
    return list(map(_EPOCH.__add__, map(_seconds, stamps)))


def _date(iso_text: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(iso_text)


class MongoObserver(RunObserver):
    """Records runs in MongoDB (``-m URL``, ``-o mongodb://...``, or added to ``ex.observers``).

    ``url`` may carry user, password, TLS and other driver options; the database comes from ``db_name``,
    else the URL's path, else ``sacred``. Extra keyword arguments go to ``pymongo.MongoClient``.
    """

    priority = 30  # as in Sacred: with -F too, the run's number comes from the database

    def __init__(self, url: str = "mongodb://localhost:27017", db_name: str | None = None,
                 collection: str = "runs", collection_prefix: str = "", priority: int | None = None,
                 **client_options: Any):
        require_package("pymongo", "mongo", "MongoDB")
        try:
            self.location = parse_mongo_url(url, db_name, collection, collection_prefix)
        except ValueError as exc:
            raise ValueError(f"cannot use '{redact_url(url)}' for MongoDB: {exc}") from None
        self.url = self.location.url  # what `labrun sync` rebuilds this observer from
        self.client_options = client_options
        if priority is not None:
            self.priority = priority
        self._client: Any = None
        self._db: Any = None
        self._indexed = False
        self._reset(None, None)

    @classmethod
    def from_url(cls, url: str) -> "MongoObserver":
        return cls(url)

    def __repr__(self) -> str:
        return f"MongoObserver({redact_url(self.url)!r}, db_name={self.location.db_name!r})"

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    def _reset(self, run_id: Any, uid: str | None) -> None:
        """Forget the previous run: one observer object can record several runs, one after another."""
        self.run_id = run_id
        self.uid = uid
        self.series: dict[str, list[Any]] = {}  # name -> [document id, part, count]
        self.metric_refs: list[dict[str, str]] = []  # info.metrics: the newest part of each metric
        self.info_sent: Any = None
        self.result_sent: Any = None
        self.output_file: Any = None
        self.output_length = 0  # bytes in the GridFS output file
        self.output_partial = b""  # its last, incomplete chunk
        self.output_tail = ""
        # After a resume: per metric, the time of the newest point stored, and the time of the last beat whose
        # output is stored. Events replayed from the journal that are not newer were applied before the failure.
        self.stored_until: dict[str, float] = {}
        self.output_until = ""

    # -- connection -----------------------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._db is None:
            import pymongo

            given = url_options(self.location.client_url) | {k.lower() for k in self.client_options}
            defaults = {"serverSelectionTimeoutMS": CONNECT_TIMEOUT_MS, "connectTimeoutMS": CONNECT_TIMEOUT_MS,
                        "appname": "labrun"}
            options = {k: v for k, v in defaults.items() if k.lower() not in given}
            self._client = pymongo.MongoClient(self.location.client_url, **options, **self.client_options)
            self._db = self._client[self.location.db_name]
        if not self._indexed:
            self._ensure_indexes()
        return self._db

    def _ensure_indexes(self) -> None:
        """The indexes the observer's look-ups use. A server that refuses one (rights, a clashing index of
        the same keys) only makes those look-ups slower: that is logged, and recording goes on."""
        from pymongo.errors import OperationFailure

        db = self._db
        try:
            db[self.location.metrics].create_index([("run_id", 1), ("name", 1), ("part", 1)])
            db[self.location.runs].create_index("uid", sparse=True)
            db["fs.files"].create_index("md5", sparse=True)
            db["fs.files"].create_index([("filename", 1), ("uploadDate", 1)])
            db["fs.chunks"].create_index([("files_id", 1), ("n", 1)], unique=True)
        except OperationFailure as exc:
            if exc.code == AUTHENTICATION_FAILED:
                raise
            logger.warning("could not create the indexes labrun uses in %s (%s); going on without them",
                           self.redacted_url, exc)
        self._indexed = True

    def _close(self) -> None:
        """Close the client at the run's end: its monitor threads would otherwise delay the exit."""
        if self._client is not None:
            self._client.close()
        self._client = self._db = None

    @property
    def _runs(self) -> Any:
        return self._connect()[self.location.runs]

    @property
    def _metrics(self) -> Any:
        return self._connect()[self.location.metrics]

    # -- events ---------------------------------------------------------------------------------------------
    def started(self, record: dict[str, Any], _id: Any) -> Any:
        from pymongo.errors import DuplicateKeyError

        runs = self._runs
        existing = self.find_run(record)
        if existing is not None:  # our insert went through before a failure: continue with that document
            self.resumed(record, existing)
            return existing
        self._reset(None, record["uid"])
        document = self._run_document(record)
        if _id is not None:
            try:
                runs.insert_one({"_id": _id, **document})
                self.run_id = _id
                return _id
            except DuplicateKeyError:
                if id_asked_for(record):
                    raise ValueError(f"run {_id} exists already in {self.redacted_url}; choose another --id") \
                        from None
                logger.warning("run %s exists already in %s; this run is stored there under a new number",
                               _id, self.redacted_url)
        for _attempt in range(1000):  # 32 runs starting at once need at most 32 attempts
            last = runs.find_one({"_id": {"$type": "number"}}, {"_id": 1}, sort=[("_id", -1)])
            candidate = int(last["_id"]) + 1 if last else 1
            try:
                runs.insert_one({"_id": candidate, **document})
            except DuplicateKeyError:
                continue  # another run took it between our read and our insert
            self.run_id = candidate
            return candidate
        raise RuntimeError(f"could not claim a run id in {self.redacted_url} after 1000 attempts")

    def find_run(self, record: dict[str, Any]) -> Any:
        found = self._runs.find_one({"uid": record["uid"]}, {"_id": 1})
        return found["_id"] if found else None

    def resumed(self, record: dict[str, Any], _id: Any) -> None:
        """Go on recording the run stored under ``_id`` (another process, or an earlier attempt, started it)."""
        self._reset(_id, record["uid"])
        doc = self._runs.find_one({"_id": _id}, {"info": 1, "result": 1, "captured_out": 1,
                                                 "captured_out_file": 1})
        if doc is None:
            raise LookupError(f"run {_id} is not in {self.redacted_url} any more")
        info = dict(doc.get("info") or {})
        self.metric_refs = info.pop("metrics", [])
        self.info_sent, self.result_sent = info, doc.get("result")
        self.output_tail = doc.get("captured_out") or ""
        for part in self._metrics.find({"run_id": _id}, {"name": 1, "part": 1, "count": 1, "last_time": 1}):
            known = self.series.get(part["name"])
            if known is None or part.get("part", 0) > known[1]:
                self.series[part["name"]] = [part["_id"], part.get("part", 0), part.get("count", 0)]
                if "last_time" in part:
                    self.stored_until[part["name"]] = part["last_time"]
        if doc.get("captured_out_file") is not None:
            files = self._connect()["fs.files"].find_one({"_id": doc["captured_out_file"]},
                                                         {"length": 1, "output_until": 1})
            self.output_file = doc["captured_out_file"]
            self.output_length = files["length"] if files else 0
            self.output_until = (files or {}).get("output_until", "")
            if self.output_length % CHUNK_SIZE:
                chunk = self._connect()["fs.chunks"].find_one(
                    {"files_id": self.output_file, "n": self.output_length // CHUNK_SIZE})
                self.output_partial = bytes(chunk["data"]) if chunk else b""

    def _run_document(self, record: dict[str, Any]) -> dict[str, Any]:
        experiment = {**record["experiment"], "sources": []}
        if record.get("environment"):  # shown by Omniboard under "Experiment Details"
            experiment["environment"] = record["environment"]
        return {
            "uid": record["uid"],
            "format": FORMAT,
            "experiment": encode_keys(experiment),
            "command": record["command"],
            "host": encode_keys(record["host"]),
            "start_time": _date(record["start_time"]),
            "heartbeat": _date(record["heartbeat"]),
            "meta": encode_keys(record["meta"]),
            "config": encode_keys(record["config"]),
            "status": record["status"],
            "result": encode_keys(record.get("result")),
            "info": {**encode_keys(record.get("info") or {}), "metrics": []},
            "artifacts": [],
            "resources": [],
            "captured_out": "",
        }

    def sources(self, sources: list[dict[str, str]]) -> None:
        entries = [[s["path"], self._store_once(s["path"], s["md5"], s["stored"])] for s in sources]
        self._runs.update_one({"_id": self.run_id}, {"$addToSet": {"experiment.sources": {"$each": entries}}})

    def resource(self, path: str, md5: str, stored_path: str) -> None:
        self._store_once(path, md5, stored_path)
        self._runs.update_one({"_id": self.run_id}, {"$addToSet": {"resources": [path, md5]}})

    def _store_once(self, path: str, md5: str, stored_path: str) -> Any:
        """The GridFS file holding this content, uploaded only if no file has it yet (sources, resources)."""
        db = self._connect()
        found = db["fs.files"].find_one({"md5": md5}, {"_id": 1})
        if found is not None:
            return found["_id"]
        import gridfs

        with open(stored_path, "rb") as f:
            return gridfs.GridFS(db).put(f, filename=path, md5=md5)

    def artifact(self, name: str, path: str, metadata: Any, content_type: str | None) -> None:
        import gridfs

        db = self._connect()
        filename = f"artifact://runs/{self.run_id}/{name}"
        found = db["fs.files"].find_one({"filename": filename, "run_uid": self.uid}, {"_id": 1})
        if found is not None:
            file_id = found["_id"]
        else:
            content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
            with open(path, "rb") as f:
                file_id = gridfs.GridFS(db).put(f, filename=filename, metadata=encode_keys(metadata),
                                                contentType=content_type, run_uid=self.uid)
        self._runs.update_one({"_id": self.run_id},
                              {"$addToSet": {"artifacts": {"name": name, "file_id": file_id}}})

    def metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        """All new points in one bulk write: a conditional $push per document touched."""
        from pymongo import UpdateOne

        if self.stored_until:
            metrics = unseen_points(metrics, self.stored_until)
        planned = {name: list(state) for name, state in self.series.items()}
        operations, new_parts = [], []
        for name, series in metrics.items():
            steps, values, stamps = series["steps"], series["values"], series["timestamps"]
            start, total = 0, len(steps)
            while start < total:
                state = planned.get(name)
                if state is None or state[2] >= MAX_POINTS_PER_DOCUMENT:
                    part = 0 if state is None else state[1] + 1
                    # Counted from 0 even if an earlier attempt pushed into it: its push then matches nothing.
                    state = planned[name] = [self._new_part(name, part), part, 0]
                    new_parts.append(name)
                end = min(total, start + MAX_POINTS_PER_DOCUMENT - state[2])
                push = {"steps": {"$each": list(map(int, steps[start:end]))},
                        "values": {"$each": values[start:end].tolist()},
                        "timestamps": {"$each": _dates(stamps[start:end])}}
                operations.append(UpdateOne({"_id": state[0], "count": state[2]},
                                            {"$push": push, "$inc": {"count": end - start},
                                             "$max": {"last_time": max(stamps[start:end])}}))
                state[2] += end - start
                start = end
        if operations:
            result = self._metrics.bulk_write(operations, ordered=True)
            if result.matched_count != len(operations):
                self._check_applied(planned, result.matched_count, len(operations))
        self.series = planned
        caught_up(metrics, self.stored_until)
        if new_parts:
            self.metric_refs = [{"name": name, "id": str(state[0])} for name, state in self.series.items()]
            self._runs.update_one({"_id": self.run_id}, {"$set": {"info.metrics": self.metric_refs}})

    def _new_part(self, name: str, part: int) -> Any:
        """The document for part ``part`` of a metric, created unless an earlier attempt created it."""
        from pymongo import ReturnDocument

        doc = self._metrics.find_one_and_update(
            {"run_id": self.run_id, "name": name, "part": part},
            {"$setOnInsert": {"steps": [], "values": [], "timestamps": [], "count": 0}},
            upsert=True, projection={"_id": 1}, return_document=ReturnDocument.AFTER)
        return doc["_id"]

    def _check_applied(self, planned: dict[str, list[Any]], matched: int, expected: int) -> None:
        """Some pushes matched nothing: fine if an earlier attempt applied them (the counts say so)."""
        for name, (doc_id, _part, count) in planned.items():
            doc = self._metrics.find_one({"_id": doc_id}, {"count": 1})
            if doc is None or doc.get("count") != count:
                raise RuntimeError(f"metric '{name}' of run {self.run_id} holds {doc and doc.get('count')} points "
                                   f"in its document where {count} were expected ({matched} of {expected} "
                                   f"writes applied); was the run changed by another writer?")

    def heartbeat(self, info: dict[str, Any], output: str, result: Any, beat_time: str) -> None:
        self._update(info, output, result, beat_time, {"heartbeat": _date(beat_time)})

    def ended(self, status: str, stop_time: str, result: Any, fail_trace: list[str] | None,
              info: dict[str, Any], output: str) -> None:
        stop = _date(stop_time)
        fields: dict[str, Any] = {"status": status, "stop_time": stop, "heartbeat": stop}
        if fail_trace:
            fields["fail_trace"] = fail_trace
        self._update(info, output, result, stop_time, fields)
        self._close()

    def _update(self, info: dict[str, Any], output: str, result: Any, beat_time: str,
                fields: dict[str, Any]) -> None:
        """One update of the run document with what changed: info, result, the output's tail. ``beat_time``
        names the output: a beat replayed after a resume whose output is stored already adds none."""
        info, result = encode_keys(info), encode_keys(result)
        if info != self.info_sent:
            fields["info"] = {**info, "metrics": self.metric_refs}
        if result != self.result_sent:
            fields["result"] = result
        tail = self.output_tail
        if output and beat_time > self.output_until:
            self._append_output(output, beat_time)
            tail = (tail + output)[-OUTPUT_TAIL:]
            fields["captured_out"] = tail
        self._runs.update_one({"_id": self.run_id}, {"$set": fields})
        self.info_sent, self.result_sent, self.output_tail = info, result, tail

    def _append_output(self, output: str, beat_time: str) -> None:
        """Append to the run's output file in GridFS, rewriting only its last chunk: the file is whole and
        readable with any GridFS client at every moment, and a repeated call writes the same chunks again."""
        db = self._connect()
        if self.output_file is None:
            file_id = self._output_file(db)
            self._runs.update_one({"_id": self.run_id}, {"$set": {"captured_out_file": file_id}})
            self.output_file = file_id
        from bson import Binary
        from pymongo import UpdateOne

        data = self.output_partial + output.encode("utf-8", "replace")
        first = self.output_length // CHUNK_SIZE
        writes = [UpdateOne({"files_id": self.output_file, "n": first + k},
                            {"$set": {"data": Binary(data[offset:offset + CHUNK_SIZE])}}, upsert=True)
                  for k, offset in enumerate(range(0, len(data), CHUNK_SIZE))]
        db["fs.chunks"].bulk_write(writes, ordered=False)
        length = first * CHUNK_SIZE + len(data)
        db["fs.files"].update_one({"_id": self.output_file}, {"$set": {"length": length, "output_until": beat_time}})
        self.output_length, self.output_until = length, beat_time
        self.output_partial = data[len(data) - (length % CHUNK_SIZE):] if length % CHUNK_SIZE else b""

    def _output_file(self, db: Any) -> Any:
        filename = f"captured_out://runs/{self.run_id}"
        found = db["fs.files"].find_one({"filename": filename, "run_uid": self.uid}, {"_id": 1})
        if found is not None:
            return found["_id"]
        return db["fs.files"].insert_one({
            "filename": filename, "length": 0, "chunkSize": CHUNK_SIZE, "contentType": "text/plain; charset=utf-8",
            "uploadDate": _dt.datetime.now(_dt.timezone.utc), "run_uid": self.uid}).inserted_id

