"""The MLflow store: each labrun run as an MLflow run, through MLflow's own client.

    -o mlflow+file:///abs/mlruns      -> tracking URI file:///abs/mlruns
    -o mlflow+sqlite:///abs/mlflow.db -> sqlite:////abs/mlflow.db (the path after sqlite:// is absolute)
    -o mlflow+http://host:5000        -> http://host:5000 (https too)

Params are the flattened config (dotted keys; values past MLflow's 6,000 characters cut, the whole config in
the artifact config.json). Metrics go through ``log_batch`` within MLflow's limits. Tags carry git, source,
user, host and the labrun run, MLflow's ``mlflow.source.*`` and ``mlflow.user`` among them, so its UI shows
them. Artifacts, sources (under ``source/``), the output (``cout.txt``) and info (``info.json``) are run
artifacts. mlflow is imported in the delivery thread, when the first run starts.

MLflow's HTTP client retries a dead server for minutes before it raises. Unless the user set them, this
observer sets ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`` and ``MLFLOW_HTTP_REQUEST_TIMEOUT=10`` in its process:
the dispatcher retries instead, from the journal, and ``labrun sync`` finishes what is left.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import tempfile
import threading
from typing import Any, Callable

from labrun.stores.mlflow_format import tracking_uri
from labrun.stores.artifact_names import check_artifact_name, safe_filename
from labrun.config.values import flatten
from labrun.recording.metric_codec import first_unseen
from labrun.observer import RunObserver, require_package
from labrun._util.redact import guard_library_logs, redact_url
from labrun._util.timestamps import posix
from labrun.stores.record import RunRecord

STATUS = {"COMPLETED": "FINISHED", "FAILED": "FAILED", "INTERRUPTED": "KILLED", "TIMEOUT": "KILLED",
          "QUEUED": "SCHEDULED", "RUNNING": "RUNNING"}
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param's value
MAX_TAG_LENGTH = 8000
METRICS_PER_BATCH = 1000  # MLflow's limits per log_batch call
PARAMS_PER_BATCH = 100
logger = logging.getLogger("labrun")
# A hang guard, not a budget: the run waits until MLflow created its run, or failed to (an unreachable
# server answers within FAIL_FAST's timeout), when the script uses MLflow's API.
SHARE_WAIT = 300
FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def _check_target(uri: str) -> None:
    """A tracking URI that can never work is refused before the run (an unreachable server is not)."""
    from labrun.stores.targets import check_http_url, check_writable_folder

    if uri.startswith(("http://", "https://")):
        check_http_url(uri, redact_url(uri))
    elif uri.startswith("file://"):
        check_writable_folder(uri[len("file://"):], "the MLflow folder")
    elif uri.startswith("sqlite:///"):
        check_writable_folder(os.path.dirname(uri[len("sqlite:///"):]) or ".", "the folder of the MLflow database")


class MlflowObserver(RunObserver):
    """Records runs in MLflow (``-o mlflow+...``, ``--mlflow URI``, or added to ``ex.observers``).

    ``experiment_name`` defaults to the labrun experiment's name.
    """

    names_runs = False
    user_api = "mlflow"  # when the script imported it, the run is shared with the script's MLflow calls

    priority = 0  # MLflow numbers no runs: the id comes from a store that does, when there is one

    def __init__(self, tracking_uri: str, experiment_name: str | None = None):
        require_package("mlflow", "mlflow", "MLflow")
        _check_target(tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self._client: Any = None
        self.run_uuid: str | None = None  # MLflow's run id
        self._created = threading.Event()  # set once the start was tried (for share_with_user_code)
        self._record: dict[str, Any] | None = None  # the run.json artifact, kept up to date with the sources
        self._output: Any = None  # the output so far, logged again as cout.txt when it grows
        # Set by resumed(): per metric, the (timestamp in ms, step) of the newest point MLflow holds.
        self.stored_until: dict[str, tuple[int, int]] = {}

    @classmethod
    def from_url(cls, url: str) -> "MlflowObserver":
        return cls(tracking_uri(url))

    @property
    def url(self) -> str:
        return f"mlflow+{self.tracking_uri}"

    def __repr__(self) -> str:
        return f"MlflowObserver({redact_url(self.tracking_uri)!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            for name, value in FAIL_FAST.items():
                os.environ.setdefault(name, value)
            if self.tracking_uri.startswith("file:"):  # asked for by name; MLflow 3 refuses it unless opted in
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            if redact_url(self.tracking_uri) != self.tracking_uri:
                # The URI holds credentials: MLflow prints "View run ... at: <URI>" on stdout when a run
                # ends, and its and urllib3's messages may echo the URI. Neither may show the password.
                os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
                guard_library_logs("mlflow", "urllib3")
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def share_with_user_code(self) -> Callable[[], None] | None:
        """Called when the script imported MLflow: make this run MLflow's active run in the main thread (and
        in the environment, for subprocesses), so that ``mlflow.log_metric`` or ``mlflow.sklearn.log_model``
        in the user's code lands in it instead of starting a second run. Waits (bounded) for MLflow to create
        the run: the price of using MLflow's API in the run. Returns the undo, called when the run ends."""
        if not self._created.wait(SHARE_WAIT) or self.run_uuid is None:
            logger.warning("MLflow has not created the run (the server does not answer); MLflow calls in the "
                           "run's code start a run of their own, and labrun delivers its run later")
            return None
        import mlflow

        saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
        os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_RUN_ID"] = self.tracking_uri, str(self.run_uuid)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.start_run(run_id=self.run_uuid)

        def undo() -> None:
            while mlflow.active_run() is not None:  # labrun sets the final status itself, after this
                mlflow.end_run()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        return undo

    # -- events ---------------------------------------------------------------------------------------------
    def started(self, record: RunRecord, _id: Any) -> Any:
        try:
            return self._start(record, _id)
        finally:
            self._created.set()  # created, or failed: share_with_user_code waits no longer

    def _start(self, record: RunRecord, _id: Any) -> Any:
        client = self.client
        experiment_id = self._experiment_id(record)
        found = self._find(experiment_id, record["uid"])
        if found is not None:  # an earlier attempt created it
            self.run_uuid = found.info.run_id
            return _id
        name = record["experiment"]["name"]
        run = client.create_run(experiment_id, start_time=_millis(record["start_time"]),
                                tags=self._tags(record, _id), run_name=f"{name} #{_id}" if _id is not None else None)
        self.run_uuid = run.info.run_id
        self._output = None
        self._log_params(record["config"])
        self._log_json("config.json", record["config"])
        self._record = {**record, "experiment": {**record["experiment"], "sources": []}, "labrun": {"sources_md5": {}}}
        self._log_json("run.json", self._record)  # the whole record: what `labrun rerun` reads back
        return _id  # MLflow's own run id never names labrun's run: the run does not wait for it

    def find_run(self, record: RunRecord) -> Any:
        found = self._find(self._experiment_id(record), record["uid"])
        if found is None:
            return None
        tag = found.data.tags.get("labrun.run_id")
        if tag is None:
            return found.info.run_id
        return int(tag) if tag.isdigit() else tag

    def resumed(self, record: RunRecord, _id: Any) -> None:
        found = self._find(self._experiment_id(record), record["uid"])
        if found is None:
            raise LookupError(f"run {record['uid']} is not in MLflow at {redact_url(self.tracking_uri)} any more")
        self.run_uuid = found.info.run_id
        self._output = None
        # Replayed points MLflow holds already are skipped: those not newer than its newest, in time order.
        # MLflow keeps milliseconds, so points within the newest millisecond are told apart by their step.
        self.stored_until = {}
        for key in found.data.metrics:
            newest = max(self.client.get_metric_history(self.run_uuid, key), key=lambda m: (m.timestamp, m.step))
            self.stored_until[key] = (newest.timestamp, newest.step)
        with tempfile.TemporaryDirectory(prefix="labrun-mlflow-") as scratch:
            try:
                earlier = self.client.download_artifacts(self.run_uuid, "cout.txt", scratch)
            except Exception:  # no output logged yet: MLflow raises its own or an OSError
                return
            with open(earlier, encoding="utf-8") as f:
                self._output_file().write(f.read())

    def metrics(self, metrics: dict[str, dict[str, Any]]) -> None:
        from mlflow.entities import Metric

        batch: list[Any] = []
        for name, series in metrics.items():
            stamps = [int(t * 1000) for t in series["timestamps"]]
            steps = list(map(int, series["steps"]))
            until = self.stored_until.get(name)  # (ms, step): compared as pairs
            start = 0 if until is None else first_unseen(list(zip(stamps, steps)), until)
            for value, stamp, step in zip(series["values"].tolist()[start:], stamps[start:], steps[start:]):
                batch.append(Metric(name, value, stamp, step))
                if len(batch) == METRICS_PER_BATCH:
                    self.client.log_batch(self.run_uuid, metrics=batch)
                    batch = []
        if batch:
            self.client.log_batch(self.run_uuid, metrics=batch)
        for name in metrics:  # past the newest stored point: everything after is new
            self.stored_until.pop(name, None)

    def heartbeat(self, info: dict[str, Any], output: str, result: Any, beat_time: str) -> None:
        self._log_output(output)

    def artifact(self, name: str, path: str, metadata: Any, content_type: str | None) -> None:
        name = check_artifact_name(name)
        self._log_file(path, name)

    def sources(self, sources: list[dict[str, str]]) -> None:
        for source in sources:
            self._log_file(source["stored"], f"source/{source['path']}")
        if self._record is not None:  # run.json lists them with their md5, which `labrun rerun` checks
            self._record["experiment"]["sources"] += [[s["path"], f"source/{s['path']}"] for s in sources]
            self._record["labrun"]["sources_md5"].update({s["path"]: s["md5"] for s in sources})
            self._log_json("run.json", self._record)

    def resource(self, path: str, md5: str, stored_path: str) -> None:
        self._log_file(stored_path, f"resources/{md5}-{os.path.basename(path)}")

    def ended(self, status: str, stop_time: str, result: Any, fail_trace: list[str] | None,
              info: dict[str, Any], output: str) -> None:
        self._log_output(output)
        if info:
            self._log_json("info.json", info)
        tags = {"labrun.status": status}
        if result is not None:
            tags["labrun.result"] = json.dumps(result, default=repr)[:MAX_TAG_LENGTH]
        if fail_trace:
            tags["labrun.fail_trace"] = "".join(fail_trace)[-MAX_TAG_LENGTH:]
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_uuid, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.set_terminated(self.run_uuid, status=STATUS.get(status, "FAILED"), end_time=_millis(stop_time))
        if self._output is not None:
            self._output.close()
            self._output = None

    # -- helpers --------------------------------------------------------------------------------------------
    def _experiment_id(self, record: RunRecord) -> str:
        name = self.experiment_name or record["experiment"]["name"]
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(name, artifact_location=self._artifact_location(name))
        except MlflowException:  # created meanwhile by a run starting at the same moment
            return self.client.get_experiment_by_name(name).experiment_id

    def _artifact_location(self, name: str) -> str | None:
        """For a database store, artifacts go beside the database: MLflow's default is ./mlruns in whatever
        folder the script runs from, which scatters a project's artifacts."""
        scheme, _, rest = self.tracking_uri.partition("://")
        if scheme != "sqlite":
            return None  # a file store keeps them in its folder, a server where it is configured to
        folder = os.path.dirname(os.path.abspath(rest[1:]))  # sqlite:///<path>, absolute when it starts with /
        return f"file://{os.path.join(folder, 'mlartifacts', safe_filename(name))}"

    def _find(self, experiment_id: str, uid: str) -> Any:
        runs = self.client.search_runs([experiment_id], filter_string=f"tags.`labrun.uid` = '{uid}'",
                                       max_results=1)
        return runs[0] if runs else None

    def _tags(self, record: RunRecord, _id: Any) -> dict[str, str]:
        experiment = record["experiment"]
        host = record.get("host") or {}
        tags = {
            "labrun.uid": record["uid"],
            "labrun.command": record["command"],
            "labrun.host": str(host.get("hostname", "")),
            "mlflow.user": getpass.getuser(),
            "mlflow.source.type": "LOCAL",
        }
        if _id is not None:
            tags["labrun.run_id"] = str(_id)
        mainfile = experiment.get("mainfile")
        if mainfile:
            tags["mlflow.source.name"] = os.path.join(experiment.get("base_dir", ""), mainfile)
        repositories = experiment.get("repositories") or []
        if repositories:
            repo = repositories[0]
            tags.update({"mlflow.source.git.commit": str(repo.get("commit")),
                         "mlflow.source.git.branch": str(repo.get("branch")),
                         "labrun.git.dirty": str(bool(repo.get("dirty"))).lower()})
            if repo.get("url"):
                tags["mlflow.source.git.repoURL"] = repo["url"]
        if (record.get("meta") or {}).get("comment"):
            tags["mlflow.note.content"] = str(record["meta"]["comment"])
        return {k: v[:MAX_TAG_LENGTH] for k, v in tags.items()}

    def _log_params(self, config: dict[str, Any]) -> None:
        from mlflow.entities import Param

        # MLflow's own convention (mlflow.log_params): str() of the value, so None is "None", True is "True"
        params = [Param(key[:250], str(v)[:MAX_PARAM_LENGTH]) for key, v in flatten(config).items()]
        for start in range(0, len(params), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_uuid, params=params[start:start + PARAMS_PER_BATCH])

    def _log_file(self, path: str, name: str) -> None:
        """Log ``path`` as the artifact ``name`` (MLflow names an artifact after its file, so copy it first)."""
        folder, filename = os.path.split(name)
        with tempfile.TemporaryDirectory(prefix="labrun-mlflow-") as scratch:
            target = os.path.join(scratch, filename)
            shutil.copyfile(path, target)
            self.client.log_artifact(self.run_uuid, target, folder or None)

    def _log_json(self, name: str, value: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="labrun-mlflow-") as scratch:
            target = os.path.join(scratch, name)
            with open(target, "w", encoding="utf-8") as f:
                json.dump(value, f, indent=2, default=repr)
            self.client.log_artifact(self.run_uuid, target)

    def _log_output(self, output: str) -> None:
        """Append to the output so far and log it as cout.txt again: the MLflow UI shows it while the run
        goes on (an artifact cannot be appended to)."""
        if not output:
            return
        file = self._output_file()
        before = file.tell()
        file.write(output)
        file.flush()
        try:
            self._log_file(file.name, "cout.txt")
        except BaseException:  # the retry brings the same output again
            file.seek(before)
            file.truncate()
            raise

    def _output_file(self) -> Any:
        if self._output is None:
            self._output = tempfile.NamedTemporaryFile("w+", encoding="utf-8", prefix="labrun-cout-", suffix=".txt")
        return self._output


def _millis(iso_text: str) -> int:
    return int(posix(iso_text) * 1000)
