"""The MongoDB store: Sacred's MongoObserver layout, which Omniboard reads, without its limits.

    runs            one document per run, integer _id (max + 1, retried on a duplicate key)
    metrics         one document per (run, metric), grown with batched $push/$each; past 50,000 points a
                    summary of the whole curve (what Omniboard plots)
    metric_points   every point of a metric longer than that, in parts of 50,000
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
import time
from typing import Any

from labrun.provenance.system_metrics import PREFIX as SYSTEM_PREFIX
from labrun.stores.targets import StoreTargetError
from labrun.stores import metric_stats
from labrun.recording.metric_codec import GIL_SLICE, caught_up, unseen_points
from labrun.stores.mongo_format import (FIELDS, MAX_POINTS_PER_DOCUMENT, SUMMARY_BUCKETS, decode_keys, encode_keys,
                                 omniboard_name, parse_mongo_url, url_options)
from labrun.observer import RunObserver, id_asked_for, require_package
from labrun.observers.metric_summary import Summary
from labrun._util.redact import redact_url
from labrun.stores.record import RunRecord

logger = logging.getLogger("labrun.mongo")
FORMAT = "MongoObserver-0.7.0"  # Sacred's format tag: readers of Sacred's runs accept the documents
CONNECT_TIMEOUT_MS = 3000  # a dead database costs a run's start at most this; the journal keeps the rest
OUTPUT_TAIL = 1 << 20  # characters of output kept in the run document; the whole output is a GridFS file
AUTHENTICATION_FAILED = 18  # the server's error code
PUSH_POINTS = MAX_POINTS_PER_DOCUMENT  # points per bulk write: pymongo encodes one in a single C call that
# holds the GIL (~11 ms for 50,000 points); smaller $push calls would cost far more server time (each rewrites
# the document): 1M points took 30 s to deliver with 16,384-point pushes against 4.5 s with 50,000
SUMMARY_READ = 16_384  # points read back at once when a metric outgrows its document
SUMMARY_INTERVAL = 1.0  # seconds between rewrites of a downsampled metric's document while the run goes on
CHUNK_SIZE = 255 * 1024  # GridFS's default chunk size
_EPOCH = _dt.datetime(1970, 1, 1)
_seconds = functools.partial(_dt.timedelta, 0)


def _dates(stamps: Any) -> list[_dt.datetime]:
    """POSIX seconds as naive UTC datetimes (BSON dates), with no Python-level loop per point, in slices of
    GIL_SLICE so that a long batch does not hold the GIL (and so the training loop) for long."""
    dates: list[_dt.datetime] = []
    for start in range(0, len(stamps), GIL_SLICE):
        dates.extend(map(_EPOCH.__add__, map(_seconds, stamps[start:start + GIL_SLICE])))
    return dates


def _date(iso_text: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(iso_text)


def _posix(date: _dt.datetime) -> float:
    return (date.replace(tzinfo=None) - _EPOCH).total_seconds()


def _push(steps: Any, values: Any, stamps: Any, start: int, end: int) -> dict[str, Any]:
    return {"steps": {"$each": list(map(int, steps[start:end]))},
            "values": {"$each": values[start:end].tolist()},
            "timestamps": {"$each": _dates(stamps[start:end])}}


class _MetricState:
    """What the observer knows of one metric it writes: its document, its point count, and once it holds
    more than fits one document, its summary and the newest full-resolution part."""

    __slots__ = ("doc_id", "count", "summary", "part", "part_id", "part_count")

    def __init__(self, doc_id: Any, count: int = 0):
        self.doc_id, self.count = doc_id, count
        self.summary: Summary | None = None
        self.part, self.part_id, self.part_count = 0, None, 0

    def copy(self) -> "_MetricState":
        other = _MetricState(self.doc_id, self.count)
        other.summary = self.summary.copy() if self.summary is not None else None
        other.part, other.part_id, other.part_count = self.part, self.part_id, self.part_count
        return other


class MongoObserver(RunObserver):
    """Records runs in MongoDB (``-m URL``, ``-o mongodb://...``, or added to ``ex.observers``).

    ``url`` may carry user, password, TLS and other driver options; the database comes from ``db_name``,
    else the URL's path, else ``sacred``. Extra keyword arguments go to ``pymongo.MongoClient``.
    """

    priority = 30  # as in Sacred: with -F too, the run's number comes from the database

    def __init__(self, url: str | None = None, db_name: str | None = None,
                 collection: str = "runs", collection_prefix: str = "", priority: int | None = None,
                 client: Any = None, overwrite: Any = None, failure_dir: str | None = None,
                 **client_options: Any):
        """Sacred's arguments: ``url`` None means localhost:27017, and ``host:port`` needs no scheme.
        ``failure_dir`` is accepted and unused (labrun's journal keeps what a database did not take).
        ``client`` and ``overwrite`` are refused with the way to do it in labrun."""
        require_package("pymongo", "mongo", "MongoDB")
        if client is not None:
            raise ValueError("MongoObserver(client=...) is not supported: labrun delivers in the background and "
                             "`labrun sync` reconnects later, both from a URL; pass url='mongodb://HOST:PORT/DB' "
                             "(with the client's options as keyword arguments) instead")
        if overwrite is not None:
            raise ValueError("MongoObserver(overwrite=...) is not supported: labrun never overwrites a stored "
                             "run; start a new run, or `labrun rerun` the old one")
        url = url or "mongodb://localhost:27017"
        if "://" not in url:  # Sacred's "host:port"
            url = f"mongodb://{url}"
        try:
            self.location = parse_mongo_url(url, db_name, collection, collection_prefix)
        except ValueError as exc:
            raise StoreTargetError(f"cannot use '{redact_url(url)}' for MongoDB: {exc}") from None
        self.url = self.location.url  # what `labrun sync` rebuilds this observer from
        self.client_options = client_options
        if priority is not None:
            self.priority = priority
        self._client: Any = None
        self._db: Any = None
        self._indexed = False
        self._reset(None, None)

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> "MongoObserver":
        """Sacred's older constructor, kept for scripts that use it."""
        return cls(*args, **kwargs)

    @classmethod
    def from_url(cls, url: str) -> "MongoObserver":
        return cls(url)

    def __repr__(self) -> str:
        return f"MongoObserver({redact_url(self.url)!r}, db_name={self.location.db_name!r})"

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    def run_location(self, run_id: Any) -> str | None:
        return f"{self.redacted_url} {run_id}"

    def _reset(self, run_id: Any, uid: str | None) -> None:
        """Forget the previous run: one observer object can record several runs, one after another."""
        self.run_id = run_id
        self.uid = uid
        self.series: dict[str, _MetricState] = {}
        self.summaries_due: dict[str, float] = {}  # downsampled metrics whose document is behind: newest time
        self.summaries_written = 0.0
        self.metric_refs: list[dict[str, str]] = []  # info.metrics: each metric's document
        self.metric_stats: dict[str, dict[str, Any]] = {}  # set in the run document at each beat (`labrun ls`)
        self.stats_sent: Any = None
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
        self.tail_until = ""  # the time of the last beat whose output is in the run document's captured_out

    # -- connection -----------------------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._db is None:
            import pymongo

            given = url_options(self.location.client_url) | {k.lower() for k in self.client_options}
            defaults = {"serverSelectionTimeoutMS": CONNECT_TIMEOUT_MS, "connectTimeoutMS": CONNECT_TIMEOUT_MS,
                        "appname": "labrun"}
            options: dict[str, Any] = {k: v for k, v in defaults.items() if k.lower() not in given}
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
            db[self.location.points].create_index([("run_id", 1), ("name", 1), ("part", 1)])
            db[self.location.system].create_index([("run_id", 1), ("name", 1)])
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
    def started(self, record: RunRecord, _id: Any) -> Any:
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

    def find_run(self, record: RunRecord) -> Any:
        found = self._runs.find_one({"uid": record["uid"]}, {"_id": 1})
        return found["_id"] if found else None

    def resumed(self, record: RunRecord, _id: Any) -> None:
        """Go on recording the run stored under ``_id`` (another process, or an earlier attempt, started it)."""
        self._reset(_id, record["uid"])
        doc = self._runs.find_one({"_id": _id}, {"info": 1, "result": 1, "captured_out": 1,
                                                 "captured_out_file": 1, metric_stats.RECORD_KEY: 1})
        if doc is None:
            raise LookupError(f"run {_id} is not in {self.redacted_url} any more")
        info = dict(doc.get("info") or {})
        self.metric_refs = info.pop("metrics", [])
        self.info_sent, self.result_sent = info, doc.get("result")
        self.metric_stats = decode_keys((doc.get(metric_stats.RECORD_KEY) or {}).get("metrics") or {})
        self.output_tail = doc.get("captured_out") or ""
        for metric in self._metrics.find({"run_id": _id}, {"name": 1, "part": 1, "count": 1, "last_time": 1,
                                                           "downsampled": 1}):
            if metric.get("part", 0):
                continue  # a later part of a metric split by labrun before 0.4: not continued
            state = self.series[metric["name"]] = _MetricState(metric["_id"], metric.get("count", 0))
            if metric.get("downsampled"):
                self._load_parts(metric["name"], state)
            if "last_time" in metric:
                self.stored_until[metric["name"]] = metric["last_time"]
        for metric in self._connect()[self.location.system].find({"run_id": _id}, {"name": 1, "last_time": 1}):
            if "last_time" in metric:
                self.stored_until[metric["name"]] = metric["last_time"]
        if doc.get("captured_out_file") is not None:
            files = self._connect()["fs.files"].find_one({"_id": doc["captured_out_file"]},
                                                         {"length": 1, "output_until": 1})
            self.output_file = doc["captured_out_file"]
            self.output_length = files["length"] if files else 0
            self.output_until = self.tail_until = (files or {}).get("output_until", "")
            if self.output_length % CHUNK_SIZE:
                chunk = self._connect()["fs.chunks"].find_one(
                    {"files_id": self.output_file, "n": self.output_length // CHUNK_SIZE})
                self.output_partial = bytes(chunk["data"]) if chunk else b""

    def _run_document(self, record: RunRecord) -> dict[str, Any]:
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
        # Omniboard builds its download and preview URLs as .../<file_id>/<name>, and its routes take one
        # path segment: a name with a folder (plots/cm.png) is listed under a flat name (plots__cm.png) that
        # they accept, and keeps its own name in `path` (what labrun's readers use).
        entry = {"name": omniboard_name(name), "file_id": file_id, **({"path": name} if "/" in name else {})}
        self._runs.update_one({"_id": self.run_id}, {"$addToSet": {"artifacts": entry}})

    def metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        """All new points, in one bulk write per collection. A metric's document in ``metrics`` grows with
        conditional $push while it holds every point; past MAX_POINTS_PER_DOCUMENT its points go to
        ``metric_points`` and the document holds a summary of the whole curve (docs/observers/mongodb.md)."""
        from pymongo import UpdateOne

        if self.stored_until:
            metrics = unseen_points(metrics, self.stored_until)
        system = {name: series for name, series in metrics.items() if name.startswith(SYSTEM_PREFIX)}
        if system:  # few points (one a heartbeat), kept out of the collection Omniboard plots from
            self._system_metrics(system)
            metric_stats.update(self.metric_stats, system)
            caught_up(system, self.stored_until)
            metrics = {name: series for name, series in metrics.items() if name not in system}
        planned = {name: state.copy() for name, state in self.series.items()}
        in_document, in_parts, summaries = [], [], {}
        new_metrics = False
        for name, series in metrics.items():
            steps, values, stamps = series["steps"], series["values"], series["timestamps"]
            state = planned.get(name)
            if state is None:
                state = planned[name] = _MetricState(self._metric_document(name))
                new_metrics = True
            total = len(steps)
            if state.summary is None and state.count + total <= MAX_POINTS_PER_DOCUMENT:
                in_document.append((UpdateOne({"_id": state.doc_id, "count": state.count},
                                              {"$push": _push(steps, values, stamps, 0, total),
                                               "$inc": {"count": total}, "$max": {"last_time": max(stamps)}}),
                                    total))
                state.count += total
                continue
            if state.summary is None:
                self._start_parts(name, state)
            assert state.summary is not None  # _start_parts made it
            state.summary.add(steps, values, stamps)
            start = 0
            while start < total:
                if state.part_count >= MAX_POINTS_PER_DOCUMENT:
                    state.part, state.part_count = state.part + 1, 0
                    state.part_id = self._new_part(name, state.part)
                end = min(total, start + MAX_POINTS_PER_DOCUMENT - state.part_count)
                in_parts.append((UpdateOne({"_id": state.part_id, "count": state.part_count},
                                           {"$push": _push(steps, values, stamps, start, end),
                                            "$inc": {"count": end - start}}), end - start))
                state.part_count += end - start
                start = end
            state.count += total
            summaries[name] = max(stamps)
        if in_document:
            self._bulk(self._metrics, in_document, planned)
        if in_parts:
            self._bulk(self._connect()[self.location.points], in_parts, planned)
        self.series = planned
        metric_stats.update(self.metric_stats, metrics)
        for name, last_time in summaries.items():
            self.summaries_due[name] = max(last_time, self.summaries_due.get(name, last_time))
        if self.summaries_due and time.monotonic() >= self.summaries_written + SUMMARY_INTERVAL:
            self._write_summaries()
        caught_up(metrics, self.stored_until)
        if new_metrics:
            self.metric_refs = [{"name": name, "id": str(state.doc_id)} for name, state in self.series.items()]
            self._runs.update_one({"_id": self.run_id}, {"$set": {"info.metrics": self.metric_refs}})

    def _system_metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        """Append system metrics to their own collection, one document per (run, metric), as Sacred's layout
        but where Omniboard's default plot does not look (docs/observers/mongodb.md)."""
        from pymongo import UpdateOne

        writes = [UpdateOne({"run_id": self.run_id, "name": name},
                            {"$push": _push(series["steps"], series["values"], series["timestamps"], 0,
                                            len(series["steps"])),
                             "$max": {"last_time": max(series["timestamps"])}}, upsert=True)
                  for name, series in metrics.items() if len(series["steps"])]
        if writes:
            self._connect()[self.location.system].bulk_write(writes, ordered=False)

    def _write_summaries(self) -> None:
        """Rewrite the documents of downsampled metrics that grew (at most every SUMMARY_INTERVAL while the
        run goes on, and at its end)."""
        for name, last_time in list(self.summaries_due.items()):
            state = self.series[name]
            assert state.summary is not None  # only downsampled metrics are due
            series = state.summary.series()
            self._metrics.update_one({"_id": state.doc_id}, {"$set": {
                "steps": series["steps"], "values": series["values"], "timestamps": _dates(series["timestamps"]),
                "count": state.count, "downsampled": True}, "$max": {"last_time": last_time}})
            del self.summaries_due[name]
        self.summaries_written = time.monotonic()

    def _metric_document(self, name: str) -> Any:
        """The metric's one document in ``metrics``, created unless an earlier attempt created it."""
        from pymongo import ReturnDocument

        doc = self._metrics.find_one_and_update(
            {"run_id": self.run_id, "name": name},
            {"$setOnInsert": {"steps": [], "values": [], "timestamps": [], "count": 0}},
            upsert=True, projection={"_id": 1}, return_document=ReturnDocument.AFTER)
        return doc["_id"]

    def _new_part(self, name: str, part: int) -> Any:
        """Full-resolution part ``part`` of a metric in ``metric_points``, created unless it exists."""
        from pymongo import ReturnDocument

        doc = self._connect()[self.location.points].find_one_and_update(
            {"run_id": self.run_id, "name": name, "part": part},
            {"$setOnInsert": {"steps": [], "values": [], "timestamps": [], "count": 0}},
            upsert=True, projection={"_id": 1}, return_document=ReturnDocument.AFTER)
        return doc["_id"]

    def _start_parts(self, name: str, state: "_MetricState") -> None:
        """The metric outgrows its document: its points so far become part 0 in ``metric_points`` and the
        summary starts from them. They are read back in slices of SUMMARY_READ points (decoding holds the GIL)
        and copied in one write (which matches nothing if an earlier attempt copied them)."""
        doc = self._metrics.find_one({"_id": state.doc_id}, {"count": 1, "downsampled": 1})
        if doc.get("downsampled"):  # an earlier attempt moved it already: take its state from the parts
            self._load_parts(name, state)
            return
        count = doc.get("count", 0)
        parts = self._connect()[self.location.points]
        state.part, state.part_id, state.part_count = 0, self._new_part(name, 0), count
        state.summary = Summary(SUMMARY_BUCKETS)
        points: dict[str, list[Any]] = {field: [] for field in FIELDS}
        for start in range(0, count, SUMMARY_READ):
            piece = self._metrics.find_one({"_id": state.doc_id},
                                           {field: {"$slice": [start, SUMMARY_READ]} for field in FIELDS})
            state.summary.add(piece["steps"], piece["values"], [_posix(t) for t in piece["timestamps"]])
            for field in FIELDS:
                points[field] += piece[field]
        parts.update_one({"_id": state.part_id, "count": 0}, {"$set": {**points, "count": count}})

    def _load_parts(self, name: str, state: "_MetricState") -> None:
        """Rebuild a downsampled metric's state from its full-resolution parts (after a resume)."""
        state.summary = Summary(SUMMARY_BUCKETS)
        state.count = 0
        parts = self._connect()[self.location.points].find({"run_id": self.run_id, "name": name}, sort=[("part", 1)])
        for part in parts:
            stamps = [_posix(t) for t in part.get("timestamps", [])]
            state.summary.add(part.get("steps", []), part.get("values", []), stamps)
            state.part, state.part_id, state.part_count = part["part"], part["_id"], part.get("count", 0)
            state.count += state.part_count

    def _bulk(self, collection: Any, operations: list[tuple[Any, int]], planned: dict[str, "_MetricState"]
              ) -> None:
        """Run (operation, points) in order, in bulk writes of about PUSH_POINTS points: pymongo encodes a
        bulk write in one C call that holds the GIL, so its size bounds how long the training loop waits."""
        groups: list[list[Any]] = [[]]
        points = 0
        for operation, count in operations:
            if groups[-1] and points + count > PUSH_POINTS:
                groups.append([])
                points = 0
            groups[-1].append(operation)
            points += count
        matched = sum(collection.bulk_write(group, ordered=True).matched_count for group in groups if group)
        if matched != len(operations):  # checked once all ran: a retry after a partial write matches late
            self._check_applied(collection, planned, matched, len(operations))

    def _check_applied(self, collection: Any, planned: dict[str, "_MetricState"], matched: int,
                       expected: int) -> None:
        """Some pushes matched nothing: fine if an earlier attempt applied them (the counts say so)."""
        in_parts = collection.name == self.location.points
        for name, state in planned.items():
            if (state.summary is not None) != in_parts:
                continue  # its pushes went to the other collection
            doc_id, count = (state.part_id, state.part_count) if in_parts else (state.doc_id, state.count)
            doc = collection.find_one({"_id": doc_id}, {"count": 1})
            if doc is not None and doc.get("count") == count:
                continue
            raise RuntimeError(f"metric '{name}' of run {self.run_id} holds {doc and doc.get('count')} points "
                               f"in its document where {count} were expected ({matched} of {expected} "
                               f"writes applied); was the run changed by another writer?")

    def store_ids(self, ids: list[dict[str, Any]]) -> None:
        self._runs.update_one({"_id": self.run_id}, {"$set": {"store_ids": encode_keys(ids)}})

    def heartbeat(self, info: dict[str, Any], output: str, result: Any, beat_time: str) -> None:
        self._update(info, output, result, beat_time, {"heartbeat": _date(beat_time)})

    def ended(self, status: str, stop_time: str, result: Any, fail_trace: list[str] | None,
              info: dict[str, Any], output: str) -> None:
        if self.summaries_due:
            self._write_summaries()
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
        stats = encode_keys(self.metric_stats)
        if stats != self.stats_sent:
            fields[metric_stats.RECORD_KEY] = {"metrics": stats}
        tail, tail_until = self.output_tail, self.tail_until
        if output and beat_time > self.output_until:
            self._append_output(output, beat_time)
        if output and beat_time > tail_until:  # not tied to the output file: a retry after a failed update adds it
            tail, tail_until = (tail + output)[-OUTPUT_TAIL:], beat_time
            fields["captured_out"] = tail
        self._runs.update_one({"_id": self.run_id}, {"$set": fields})
        self.info_sent, self.result_sent, self.stats_sent = info, result, stats
        self.output_tail, self.tail_until = tail, tail_until

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


QueuedMongoObserver = MongoObserver
"""Sacred's MongoObserver that queues what the database cannot take yet: every labrun observer is fed from
the run's local journal in the background, so the plain MongoObserver already does that."""
