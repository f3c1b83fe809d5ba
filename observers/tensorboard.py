"""The TensorBoard store: event files TensorBoard reads, one folder per run, written without TensorFlow.

    LOGDIR/<experiment>_<id>/events.out.tfevents.<time>.<host>.<uid>.labrun   (id zero-padded: mnist_0007)

Scalars carry their step and wall time. The config goes to the HParams plugin as the session's
hyperparameters and the status closes the session, so the HPARAMS tab compares runs by config and by the
final value of every metric. Status, git state and info are text summaries.

Scalar events are the bulk, so they are encoded here directly in protobuf's wire format (an Event holding one
simple_value) and framed as TFRecords in one buffer per batch: about 3 us a point, where building protobuf
objects and writing them through TensorBoard's EventFileWriter costs 45 us. The rare events (hparams, text)
use TensorBoard's own protobuf classes. The TFRecord checksum is CRC32C: from google-crc32c (C) when
installed, else TensorBoard's pure-Python one.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from typing import Any, Callable

from labrun.stores.artifact_names import check_run_id
from labrun.stores.targets import check_writable_folder
from labrun.stores.artifact_names import check_artifact_name, safe_filename
from labrun._util.atomic_file import claim_folder
from labrun.config.values import flatten
from labrun.recording.metric_codec import caught_up, unseen_points
from labrun.observer import RunObserver, id_asked_for, require_package
from labrun._util.timestamps import posix
from labrun.stores.record import RunRecord

FLOAT = struct.Struct("<f")
DOUBLE = struct.Struct("<d")
LENGTH = struct.Struct("<Q")
CHECKSUM = struct.Struct("<I")


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint; negative int64 values take ten bytes, as protobuf writes them."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _crc32c() -> Callable[[bytes], int]:
    try:
        import google_crc32c

        return google_crc32c.value
    except ImportError:
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c

        return crc32c


class RecordFile:
    """An append-only TFRecord file: each record is length, masked CRC of the length, data, masked CRC."""

    def __init__(self, path: str):
        self.path = path
        self._crc = _crc32c()
        self._file = open(path, "ab")

    def _masked(self, data: bytes) -> int:
        crc = self._crc(data)
        return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

    def frame(self, data: bytes) -> bytes:
        header = LENGTH.pack(len(data))
        return header + CHECKSUM.pack(self._masked(header)) + data + CHECKSUM.pack(self._masked(data))

    def write(self, records: list[bytes]) -> None:
        self._file.write(b"".join(map(self.frame, records)))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def scalar_tag(metric: str) -> str:
    """A metric's TensorBoard tag: dots become slashes, so ``train.loss`` and ``train.acc`` (Sacred's and
    Omniboard's habit) share the ``train`` group, as ``train/loss`` and ``train/acc`` do."""
    return metric.replace(".", "/")


def scalar_events(tag: str, steps: Any, values: Any, stamps: Any) -> list[bytes]:
    """Serialized Events, each ``{wall_time, step, summary {value {tag, simple_value}}}``."""
    tag_bytes = tag.encode("utf-8")
    value_head = b"\x0a" + _varint(len(tag_bytes)) + tag_bytes + b"\x15"  # Value.tag, then Value.simple_value
    value_length = len(value_head) + 4
    summary_head = b"\x0a" + _varint(value_length) + value_head  # Summary.value
    summary_field = b"\x2a" + _varint(len(summary_head) + 4) + summary_head  # Event.summary
    events = []
    for step, value, stamp in zip(steps, values, stamps):
        events.append(b"\x09" + DOUBLE.pack(stamp) + b"\x10" + _varint(int(step)) + summary_field + FLOAT.pack(value))
    return events


class TensorBoardObserver(RunObserver):
    """Writes each run as a TensorBoard run (``-o tensorboard://LOGDIR``, ``--tensorboard LOGDIR``)."""

    priority = 5  # names the run only when no store with numbered runs does

    def __init__(self, logdir: str):
        require_package("tensorboard", "tensorboard", "TensorBoard")
        self.logdir = os.path.abspath(logdir)
        check_writable_folder(self.logdir, "the TensorBoard log folder")
        self.run_dir: str | None = None
        self._uid: str | None = None
        self._file: RecordFile | None = None
        self._info: Any = None
        self.stored_until: dict[str, float] = {}  # set by resumed()

    @classmethod
    def from_url(cls, url: str) -> "TensorBoardObserver":
        return cls(url.split("://", 1)[1] if "://" in url else url)

    @property
    def url(self) -> str:
        return f"tensorboard://{self.logdir}"

    def __repr__(self) -> str:
        return f"TensorBoardObserver({self.logdir!r})"

    # -- events -------------------------------------------------------------------------------------------
    def started(self, record: RunRecord, _id: Any) -> Any:
        if self._uid == record["uid"] and self.run_dir is not None:  # a retried start
            return _id
        name = safe_filename(record["experiment"]["name"])
        self.run_dir, _id = self._claim(name, _id, id_asked_for(record))
        self._open(record["uid"])
        start = posix(record["start_time"])
        self._write([self._hparams_start(record["config"], start, os.path.basename(self.run_dir)),
                     self._text("run/status", "RUNNING", start),
                     self._text("run/git", _git_text(record["experiment"].get("repositories") or []), start),
                     self._text("run/command", f"{record['command']} (labrun run {_id}, uid {record['uid']})",
                                start)])
        return _id

    def find_run(self, record: RunRecord) -> Any:
        """The run whose event file carries this uid in its name: only `labrun sync` asks."""
        suffix = f".{record['uid']}.labrun"
        if os.path.isdir(self.logdir):
            for folder in os.listdir(self.logdir):
                path = os.path.join(self.logdir, folder)
                if os.path.isdir(path) and any(f.endswith(suffix) for f in os.listdir(path)):
                    tail = folder.rpartition("_")[2]
                    return int(tail) if tail.isdigit() else tail
        return None

    def resumed(self, record: RunRecord, _id: Any) -> None:
        self.run_dir = os.path.join(self.logdir, _folder_name(safe_filename(record["experiment"]["name"]), _id))
        if not os.path.isdir(self.run_dir):
            raise FileNotFoundError(f"the TensorBoard run folder {self.run_dir} is gone")
        self._open(record["uid"])
        self.stored_until = self._newest_points()

    def _newest_points(self) -> dict[str, float]:
        """Per scalar tag, the wall time of its newest point in the event file (read with TensorBoard's own
        loader), so that replayed points are not written twice."""
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

        newest: dict[str, float] = {}
        assert self._file is not None, "resumed() opens the event file first"
        for event in LegacyEventFileLoader(self._file.path).Load():
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    newest[value.tag] = max(newest.get(value.tag, event.wall_time), event.wall_time)
        return newest

    def metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        metrics = {scalar_tag(name): series for name, series in metrics.items()}
        if self.stored_until:
            metrics = unseen_points(metrics, self.stored_until)
        records = []
        for name, series in metrics.items():
            records += scalar_events(name, series["steps"], series["values"], series["timestamps"])
        self._write(records)
        caught_up(metrics, self.stored_until)

    def heartbeat(self, info: dict[str, Any], output: str, result: Any, beat_time: str) -> None:
        self._write_info(info, posix(beat_time))

    def ended(self, status: str, stop_time: str, result: Any, fail_trace: list[str] | None,
              info: dict[str, Any], output: str) -> None:
        stop = posix(stop_time)
        self._write_info(info, stop)
        events = [self._text("run/status", status, stop), self._hparams_end(status, stop)]
        if result is not None:
            events.append(self._text("run/result", json.dumps(result, default=repr), stop))
        if fail_trace:
            events.append(self._text("run/fail_trace", "".join(fail_trace), stop))
        self._write(events)
        assert self._file is not None
        self._file.close()
        self._file = None

    def artifact(self, name: str, path: str, metadata: Any, content_type: str | None) -> None:
        """TensorBoard shows no files: the artifact is copied into the run's folder, under artifacts/."""
        import shutil

        assert self.run_dir is not None
        target = os.path.join(self.run_dir, "artifacts", check_artifact_name(name))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)

    # -- helpers --------------------------------------------------------------------------------------------
    def _claim(self, name: str, _id: Any, explicit: bool) -> tuple[str, Any]:
        """The run's folder ``<experiment>_<id>``: the id given, else the next number in LOGDIR."""
        def number(entry: str) -> int | None:
            tail = entry.rpartition("_")[2]
            return int(tail) if tail.isdigit() else None

        return claim_folder(self.logdir, _id, explicit, lambda run_id: _folder_name(name, run_id), number)

    def _open(self, uid: str) -> None:
        assert self.run_dir is not None
        self._uid = uid
        self._info = None
        self.stored_until = {}
        existing = [f for f in os.listdir(self.run_dir) if ".tfevents." in f]
        if existing:  # resumed: go on in the same file (TensorBoard reads files in name order)
            self._file = RecordFile(os.path.join(self.run_dir, sorted(existing)[-1]))
            return
        now = time.time()
        name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{uid}.labrun"  # the uid: for find_run
        path = os.path.join(self.run_dir, name)
        self._file = RecordFile(path)
        from tensorboard.compat.proto import event_pb2

        self._file.write([event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString()])

    def _write(self, events: list[Any]) -> None:
        assert self._file is not None, "the TensorBoard run was not started"
        self._file.write([e if isinstance(e, bytes) else e.SerializeToString() for e in events])

    def _write_info(self, info: dict[str, Any], when: float) -> None:
        if info and info != self._info:
            self._write([self._text("run/info", "```\n" + json.dumps(info, indent=2, default=repr) + "\n```", when)])
            self._info = info

    @staticmethod
    def _event(when: float, value: Any) -> Any:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        return event_pb2.Event(wall_time=when, step=0, summary=summary_pb2.Summary(value=[value]))

    def _text(self, tag: str, text: str, when: float) -> Any:
        """A text summary (the Text plugin: a string tensor)."""
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[text.encode("utf-8")],
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto())
        metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
        return self._event(when, summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor))

    def _hparams(self, tag: str, plugin_data: Any, when: float) -> Any:
        """An HParams plugin summary: the plugin data in the metadata, an empty float tensor as value."""
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

        plugin_data.version = 0
        metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name="hparams", content=plugin_data.SerializeToString()))
        empty = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=0)]))
        return self._event(when, summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=empty))

    def _hparams_start(self, config: dict[str, Any], when: float, group: str) -> Any:
        """The session's hyperparameters: numbers and booleans as such, anything else as text."""
        from tensorboard.plugins.hparams import plugin_data_pb2

        start = plugin_data_pb2.SessionStartInfo(start_time_secs=when, group_name=group)  # one row per run
        for key, value in flatten(config).items():
            if isinstance(value, bool):
                start.hparams[key].bool_value = value
            elif isinstance(value, (int, float)):
                start.hparams[key].number_value = float(value)
            else:
                start.hparams[key].string_value = value if isinstance(value, str) else json.dumps(value)
        return self._hparams("_hparams_/session_start_info",
                             plugin_data_pb2.HParamsPluginData(session_start_info=start), when)

    def _hparams_end(self, status: str, when: float) -> Any:
        from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

        code = {"COMPLETED": api_pb2.STATUS_SUCCESS, "RUNNING": api_pb2.STATUS_RUNNING}.get(status,
                                                                                        api_pb2.STATUS_FAILURE)
        end = plugin_data_pb2.SessionEndInfo(status=code, end_time_secs=when)
        return self._hparams("_hparams_/session_end_info", plugin_data_pb2.HParamsPluginData(session_end_info=end),
                             when)


def _folder_name(name: str, _id: Any) -> str:
    """``<experiment>_<id>``, numbers zero-padded so that folders sort as runs were numbered."""
    return f"{name}_{_id:04d}" if isinstance(_id, int) else f"{name}_{check_run_id(_id)}"


def _git_text(repositories: list[dict[str, Any]]) -> str:
    if not repositories:
        return "not in a git repository"
    return "\n\n".join(f"{r.get('path')}: commit {r.get('commit')} on {r.get('branch')}"
                       f"{' (uncommitted changes)' if r.get('dirty') else ''}, remote {r.get('url')}"
                       for r in repositories)
