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
import logging
import os
import shutil
from typing import Any

from labrun._util.paths import display_path
from labrun.stores.artifact_names import check_artifact_name, check_run_id
from labrun._util.atomic_file import append_whole, atomic_open, claim_folder, write_json_atomic
from labrun.observer import RunObserver, id_asked_for
from labrun.stores import metric_stats
from labrun.recording.metric_codec import caught_up, unseen_points
from labrun.stores.metrics_file import read_metrics
from labrun.observers.file_metrics import append_batches, write_metrics_json
from labrun.stores.record import RunRecord
from labrun.stores.targets import check_writable_folder

logger = logging.getLogger("labrun")



class FileStorageObserver(RunObserver):
    """Records runs in a folder, one sub-folder per run (``-F DIR``, ``-o file://DIR``)."""

    priority = 20

    def __init__(self, basedir: str, resource_dir: str | None = None, source_dir: str | None = None,
                 template: str | None = None, priority: int = 20, copy_artifacts: bool = True,
                 copy_sources: bool = True):
        """Sacred's arguments: ``resource_dir`` and ``source_dir`` (default ``DIR/_resources``, ``DIR/_sources``)
        hold each resource and source once; ``template`` (else ``DIR/template.html`` when it exists) is
        rendered with mako, when installed, into ``report.<ext>`` in the run's folder at its end;
        ``copy_sources=False`` lists the sources where they are instead of copying them. ``copy_artifacts``
        is accepted and has no effect: labrun copies every artifact when it is added, so that later changes
        to the file do not count (Sacred skips copying only files already inside the store)."""
        self.basedir = os.path.abspath(basedir)
        check_writable_folder(self.basedir, "the file store")
        self.resource_dir = os.path.abspath(resource_dir or os.path.join(self.basedir, "_resources"))
        self.source_dir = os.path.abspath(source_dir or os.path.join(self.basedir, "_sources"))
        if template is not None and not os.path.exists(template):
            raise FileNotFoundError(f"the report template '{template}' does not exist")
        default_template = os.path.join(self.basedir, "template.html")
        self.template = template or (default_template if os.path.exists(default_template) else None)
        self.priority = priority
        self.copy_artifacts = copy_artifacts
        self.copy_sources = copy_sources
        self.run_dir: str | None = None
        self._uid: str | None = None
        self.run_entry: dict[str, Any] = {}
        self.info: dict[str, Any] = {}
        self.stored_until: dict[str, float] = {}  # set by resumed()
        self.output_until = ""

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> "FileStorageObserver":
        """Sacred's older constructor, kept for scripts that use it."""
        return cls(*args, **kwargs)

    @classmethod
    def from_url(cls, url: str) -> "FileStorageObserver":
        path = url[len("file://"):] if url.startswith("file://") else url
        return cls(path)

    def __repr__(self) -> str:
        return f"FileStorageObserver({self.basedir!r})"

    def run_location(self, run_id: Any) -> str | None:
        return display_path(os.path.join(self.basedir, str(run_id)))

    @property
    def url(self) -> str:
        """The URL that builds this observer again (for ``labrun sync``)."""
        return f"file://{self.basedir}"

    # -- events ------------------------------------------------------------------------------------------
    def started(self, record: RunRecord, _id: Any) -> Any:
        if self.run_dir is not None and self._uid == record["uid"]:  # a retried start keeps its folder
            _id = os.path.basename(self.run_dir)
            _id = int(_id) if _id.isdigit() else _id
        else:  # the same observer object records each new run in a new folder
            self.run_dir, _id = self._claim(_id, id_asked_for(record))
            self._uid = record["uid"]
        self.stored_until, self.output_until = {}, ""
        self.run_entry = {k: v for k, v in record.items() if k not in ("config", "info")}
        self.run_entry["experiment"] = {**record["experiment"], "sources": []}  # filled by sources()
        self.metric_stats: dict[str, dict[str, Any]] = {}  # saved with run.json at each beat, for `labrun ls`
        # `labrun ls` reads one file per run: the config is in run.json too (config.json stays Sacred's copy)
        self.run_entry[metric_stats.RECORD_KEY] = {"metrics": self.metric_stats, "config": record["config"]}
        self.info = {}
        write_json_atomic(self._path("config.json"), record["config"])
        self._save_info(record.get("info") or {})  # as in Sacred, info.json exists once info has content
        open(self._path("cout.txt"), "a").close()
        self._save_run()
        return _id

    def find_run(self, record: RunRecord) -> Any:
        """The run folder whose run.json has this uid (newest first): only `labrun sync` asks."""
        if not os.path.isdir(self.basedir):
            return None
        names = os.listdir(self.basedir)
        numbered = sorted((n for n in names if n.isdigit()), key=int, reverse=True)
        for name in numbered + [n for n in names if not n.isdigit() and not n.startswith("_")]:
            try:
                with open(os.path.join(self.basedir, name, "run.json"), encoding="utf-8") as f:
                    if json.load(f).get("uid") == record["uid"]:
                        return int(name) if name.isdigit() else name
            except (OSError, ValueError):
                continue
        return None

    def resumed(self, record: RunRecord, _id: Any) -> None:
        self.run_dir, self._uid = os.path.join(self.basedir, str(_id)), record["uid"]
        with open(self._path("run.json"), encoding="utf-8") as f:
            self.run_entry = json.load(f)
        info_path = self._path("info.json")
        self.info = {}
        if os.path.exists(info_path):
            with open(info_path, encoding="utf-8") as f:
                self.info = json.load(f)
        # What reached the folder before the failure is not written twice when the journal replays it.
        stored = read_metrics(self.run_dir)
        self.stored_until = {name: series["timestamps"][-1] for name, series in stored.items()
                             if len(series["timestamps"])}
        self.metric_stats = metric_stats.of(stored)
        self.run_entry[metric_stats.RECORD_KEY] = {**self.run_entry.get(metric_stats.RECORD_KEY, {}),
                                                   "metrics": self.metric_stats}
        self.output_until = self.run_entry.get("heartbeat") or ""

    def metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        if self.stored_until:
            metrics = unseen_points(metrics, self.stored_until)
        append_batches(self.run_dir, metrics)
        metric_stats.update_ends(self.metric_stats, metrics)  # min and max: at the end, from all points
        caught_up(metrics, self.stored_until)

    def heartbeat(self, info: dict[str, Any], output: str, result: Any, beat_time: str) -> None:
        self._append_output(output, beat_time)
        self._save_info(info)
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
        entry = [path, self._store_once(self.resource_dir, path, md5, stored_path)]
        if entry not in self.run_entry["resources"]:
            self.run_entry["resources"].append(entry)
        self._save_run()

    def sources(self, sources: list[dict[str, str]]) -> None:
        """Sacred's ``[relative path, "_sources/<stem>_<md5><ext>"]`` entries, each content stored once."""
        listed = self.run_entry["experiment"]["sources"]
        for source in sources:
            if self.copy_sources:
                entry = [source["path"], self._store_once(self.source_dir, source["path"], source["md5"],
                                                          source["stored"])]
            else:  # Sacred's copy_sources=False: where the file is, relative to the store
                where = os.path.join(self.run_entry["experiment"].get("base_dir") or "", source["path"])
                entry = [source["path"], os.path.relpath(where, self.basedir)]
            if entry not in listed:
                listed.append(entry)
        self._save_run()

    def store_ids(self, ids: list[dict[str, Any]]) -> None:
        self.run_entry["store_ids"] = ids
        self._save_run()

    def ended(self, status: str, stop_time: str, result: Any, fail_trace: list[str] | None,
              info: dict[str, Any], output: str) -> None:
        self._append_output(output, stop_time)
        self._save_info(info)
        self.metric_stats.update(write_metrics_json(self.run_dir))  # every point seen: min and max too
        self.run_entry.update(status=status, stop_time=stop_time, heartbeat=stop_time, result=result)
        if fail_trace:
            self.run_entry["fail_trace"] = fail_trace
        self._save_run()
        if self.template:
            self._render_report()

    # -- helpers -----------------------------------------------------------------------------------------
    def _claim(self, _id: Any, explicit: bool) -> tuple[str, Any]:
        """A new run folder DIR/<id>: ``_id``'s if given and free, else the next number. An id chosen
        elsewhere (another store, a Sacred-style observer) must be a plain name, never a path."""
        if _id is not None and not isinstance(_id, int):
            check_run_id(_id)
        return claim_folder(self.basedir, _id, explicit, str, lambda entry: int(entry) if entry.isdigit() else None)

    def _store_once(self, folder: str, path: str, md5: str, stored_path: str) -> str:
        """Copy a file to ``folder/<stem>_<md5><ext>`` unless that content is there; the path relative to DIR."""
        stem, ext = os.path.splitext(os.path.basename(path))
        target = os.path.join(folder, f"{stem}_{md5}{ext}")
        relative = os.path.relpath(target, self.basedir)
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(stored_path, "rb") as source, atomic_open(target, "wb") as copy:
                shutil.copyfileobj(source, copy)
        return relative

    def _render_report(self) -> None:
        """Sacred's report: the template rendered with mako (run, config, info, cout, savedir)."""
        try:
            from mako.template import Template
        except ImportError:
            logger.warning("the file store's report template %s needs mako: pip install mako", self.template)
            return
        with open(self._path("config.json"), encoding="utf-8") as f:
            config = json.load(f)
        cout_path = self._path("cout.txt")
        cout = ""
        if os.path.exists(cout_path):
            with open(cout_path, encoding="utf-8") as f:
                cout = f.read()
        report = Template(filename=self.template).render(run=self.run_entry, config=config, info=self.info,
                                                         cout=cout, savedir=self.run_dir)
        with atomic_open(self._path("report" + os.path.splitext(str(self.template))[1]), "w") as f:
            f.write(report)

    def _path(self, name: str) -> str:
        assert self.run_dir is not None
        return os.path.join(self.run_dir, name)

    def _save_run(self) -> None:
        write_json_atomic(self._path("run.json"), self.run_entry)

    def _save_info(self, info: dict[str, Any]) -> None:
        if info != self.info:
            self.info = info
            write_json_atomic(self._path("info.json"), info)

    def _append_output(self, output: str, beat_time: str) -> None:
        """Append a beat's output, all or nothing; a beat retried or replayed after its output was written
        adds none again."""
        if output and beat_time > self.output_until:
            with open(self._path("cout.txt"), "ab", buffering=0) as f:
                append_whole(f, [output.encode("utf-8", "surrogateescape")])
            self.output_until = beat_time
